"""Every table of every domain, imported in one place for Alembic and ``create_all``."""

from __future__ import annotations

from fairtrain.accounts import models as accounts_models
from fairtrain.audit import models as audit_models
from fairtrain.catalog import models as catalog_models
from fairtrain.consent import models as consent_models
from fairtrain.datasets import models as datasets_models
from fairtrain.db import Base
from fairtrain.delivery import models as delivery_models
from fairtrain.ingest import models as ingest_models
from fairtrain.jobs import models as jobs_models
from fairtrain.ledger import models as ledger_models
from fairtrain.licensing import models as licensing_models
from fairtrain.vault import models as vault_models
from fairtrain.withdrawal import models as withdrawal_models

__all__ = ["Base", "metadata"]

# Imported for their side effect of registering tables on Base.metadata.
_DOMAIN_MODELS = (
    accounts_models,
    audit_models,
    catalog_models,
    consent_models,
    datasets_models,
    delivery_models,
    ingest_models,
    jobs_models,
    licensing_models,
    ledger_models,
    vault_models,
    withdrawal_models,
)

metadata = Base.metadata
