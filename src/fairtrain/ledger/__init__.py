"""fairtrain.ledger: double-entry accounts, royalties and payouts.

``service`` posts balanced, idempotent, audited entries and runs the licence lifecycle
(invoice, payment, cancellation) and payout batches; ``royalties`` splits a pool to the
cent (largest remainder); ``payouts`` checks payout details and writes bank files (CSV,
ISO 20022 pain.001.001.09). See docs/ledger.md.
"""
