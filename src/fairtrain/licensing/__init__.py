"""fairtrain.licensing"""
