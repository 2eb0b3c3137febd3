"""fairtrain.jobs"""
