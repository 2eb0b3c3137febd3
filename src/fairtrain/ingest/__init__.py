"""fairtrain.ingest"""
