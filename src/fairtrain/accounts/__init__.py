"""fairtrain.accounts"""
