"""fairtrain.datasets"""
