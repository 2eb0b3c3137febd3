"""fairtrain.vault"""
