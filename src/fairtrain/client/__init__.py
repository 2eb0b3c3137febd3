"""fairtrain.client"""
