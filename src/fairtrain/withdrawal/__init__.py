"""fairtrain.withdrawal"""
