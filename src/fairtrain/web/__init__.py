"""fairtrain.web"""
