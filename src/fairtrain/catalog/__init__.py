"""fairtrain.catalog"""
