"""The platform's IRIs for the things its ODRL policies, agreements and receipts name.

One place, so a policy's ``target``, a licence agreement's ``assignee`` and a receipt's
subject always spell the same thing the same way.
"""

from __future__ import annotations

from fairtrain.config import Settings

__all__ = ["asset_iri", "dataset_version_iri", "licence_iri", "org_iri", "policy_iri"]


def _base(settings: Settings) -> str:
    return settings.base_url.rstrip("/")


def policy_iri(settings: Settings, policy_id: str) -> str:
    return f"{_base(settings)}/policies/{policy_id}"


def asset_iri(settings: Settings, asset_id: str) -> str:
    return f"{_base(settings)}/assets/{asset_id}"


def org_iri(settings: Settings, org_id: str) -> str:
    return f"{_base(settings)}/orgs/{org_id}"


def dataset_version_iri(settings: Settings, version_id: str) -> str:
    return f"{_base(settings)}/dataset-versions/{version_id}"


def licence_iri(settings: Settings, licence_id: str) -> str:
    return f"{_base(settings)}/licences/{licence_id}"
