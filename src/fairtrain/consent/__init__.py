"""fairtrain.consent"""
