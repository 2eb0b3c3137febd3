"""Tamper-evident audit log: hash chain, signed Merkle checkpoints, offline verification."""
