"""Who is asking: the one value every authorisation decision takes."""

from __future__ import annotations

from dataclasses import dataclass, field

from fairtrain.accounts.models import OrgRole, UserKind

__all__ = ["ANONYMOUS", "API_KEY_SCOPES", "Principal"]

# What an API key may be limited to. Keys act for their organisation, never for a person.
API_KEY_SCOPES = frozenset(
    {
        "catalog:read",
        "campaigns:write",
        "datasets:write",
        "licences:write",
        "downloads:read",
        "notices:read",
        "attestations:write",
    }
)


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: str | None
    kind: UserKind | None
    org_id: str | None = None
    org_role: OrgRole | None = None
    via: str = "anonymous"  # "session" | "api_key" | "anonymous"
    scopes: frozenset[str] = field(default_factory=frozenset)
    session_id: str | None = None
    api_key_id: str | None = None

    @property
    def is_authenticated(self) -> bool:
        return self.via != "anonymous"

    @property
    def ref(self) -> str:
        """The audit log's spelling of this actor."""
        if self.api_key_id:
            return f"apikey:{self.api_key_id}"
        if self.user_id:
            return f"user:{self.user_id}"
        return "anonymous"

    def has_scope(self, scope: str) -> bool:
        """Sessions carry the person's full rights; API keys only their scopes."""
        return self.via == "session" or scope in self.scopes


ANONYMOUS = Principal(user_id=None, kind=None)
