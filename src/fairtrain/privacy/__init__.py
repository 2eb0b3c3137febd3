"""fairtrain.privacy"""
