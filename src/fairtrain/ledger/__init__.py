"""fairtrain.ledger"""
