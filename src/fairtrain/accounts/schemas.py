"""Request and response bodies of the accounts API."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

from fairtrain.accounts.models import OrgRole

__all__ = [
    "ApiKeyCreate",
    "ApiKeyCreated",
    "ApiKeyOut",
    "BuyerSignup",
    "ContributorSignup",
    "LoginRequest",
    "MeOut",
    "MemberCreate",
    "MemberOut",
    "OrgOut",
    "ProfileIn",
    "ProfileOut",
    "SessionOut",
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ContributorSignup(Strict):
    email: str = Field(max_length=320)
    password: str = Field(max_length=256)
    display_name: str = Field(max_length=200)
    date_of_birth: date
    adult_attestation: bool
    jurisdiction: str = Field(max_length=10, examples=["DE", "US-IL"])


class BuyerSignup(Strict):
    org_name: str = Field(max_length=300)
    email: str = Field(max_length=320)
    password: str = Field(max_length=256)
    display_name: str = Field(max_length=200)
    jurisdiction: str = Field(max_length=10)


class LoginRequest(Strict):
    # No control characters: an address with a NUL can match no account, and PostgreSQL
    # refuses NUL in text outright.
    email: str = Field(max_length=320, pattern=r"^[^\x00-\x1f\x7f]*$")
    password: str = Field(max_length=256)


class MeOut(BaseModel):
    id: str
    email: str
    display_name: str
    kind: str
    jurisdiction: str | None
    org_id: str | None
    org_role: str | None
    csrf_token: str | None = Field(
        default=None, description="Send as X-CSRF-Token on unsafe requests made with the cookie."
    )


class SessionOut(BaseModel):
    id: str
    created_at: datetime
    expires_at: datetime
    last_seen_at: datetime
    current: bool


class OrgOut(BaseModel):
    id: str
    name: str
    jurisdiction: str | None
    created_at: datetime


class MemberCreate(Strict):
    email: str = Field(max_length=320)
    password: str = Field(max_length=256)
    display_name: str = Field(max_length=200)
    role: OrgRole = OrgRole.MEMBER


class MemberOut(BaseModel):
    user_id: str
    email: str
    display_name: str
    role: str
    created_at: datetime


class ApiKeyCreate(Strict):
    name: str = Field(max_length=200)
    scopes: list[str] = Field(max_length=20)


class ApiKeyOut(BaseModel):
    id: str
    name: str
    prefix: str
    scopes: list[str]
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    secret: str = Field(description="Shown once. Store it now; fairtrain keeps only a hash.")


class ProfileIn(Strict):
    share_age_band: bool = False
    gender: str | None = Field(default=None, max_length=30)
    accent: str | None = Field(default=None, max_length=120)
    share_region: bool = False
    languages: list[str] = Field(default_factory=list, max_length=10)


class ProfileOut(BaseModel):
    share_age_band: bool
    gender: str | None
    accent: str | None
    share_region: bool
    languages: list[str]
    shown_to_buyers: dict[str, object] = Field(
        description="Exactly what buyers may see: generalised, and only what you chose."
    )
