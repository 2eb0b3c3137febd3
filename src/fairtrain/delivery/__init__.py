"""fairtrain.delivery"""
