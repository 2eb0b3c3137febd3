"""fairtrain.compliance: what the law asks a data platform to be able to show."""
