"""Accounts: people, buyer organisations, their memberships, web sessions and API keys."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Date, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from fairtrain.db import Base, JSONValue, UTCDateTime

__all__ = [
    "ApiKey",
    "ContributorProfile",
    "LoginThrottle",
    "Membership",
    "OrgRole",
    "Organisation",
    "User",
    "UserKind",
    "WebSession",
]


class UserKind(StrEnum):
    CONTRIBUTOR = "contributor"
    BUYER = "buyer"  # a member of a buyer organisation
    OPERATOR = "operator"
    AUDITOR = "auditor"


class OrgRole(StrEnum):
    ADMIN = "admin"
    MEMBER = "member"


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)  # stored lower-cased
    display_name: Mapped[str] = mapped_column(String(120))
    kind: Mapped[UserKind] = mapped_column(String(20))
    password_hash: Mapped[str] = mapped_column(String(200))
    # Contributors only: checked 18+ at sign-up, with their own attestation.
    date_of_birth: Mapped[date | None] = mapped_column(Date, nullable=True)
    adult_attested_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    jurisdiction: Mapped[str | None] = mapped_column(String(6), nullable=True)  # ISO 3166
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    memberships: Mapped[list[Membership]] = relationship(back_populates="user")


class Organisation(Base):
    __tablename__ = "organisations"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    jurisdiction: Mapped[str | None] = mapped_column(String(6), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    memberships: Mapped[list[Membership]] = relationship(back_populates="organisation")


class Membership(Base):
    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("org_id", "user_id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"), index=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    role: Mapped[OrgRole] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    organisation: Mapped[Organisation] = relationship(back_populates="memberships")
    user: Mapped[User] = relationship(back_populates="memberships")


class WebSession(Base):
    """A browser session. Only the SHA-256 of the cookie's token is stored."""

    __tablename__ = "web_sessions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class ApiKey(Base):
    """A buyer organisation's API key. Shown once; only its SHA-256 is stored."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"), index=True)
    created_by: Mapped[str] = mapped_column(ForeignKey("users.id"))
    name: Mapped[str] = mapped_column(String(120))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[list[str]] = mapped_column(JSONValue)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class LoginThrottle(Base):
    """Failed logins per e-mail address and per client address, shared by every process."""

    __tablename__ = "login_throttles"

    key: Mapped[str] = mapped_column(String(400), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class ContributorProfile(Base):
    """Self-declared demographics: every field optional, stored already generalised.

    The age band is derived from the date of birth, shared only when the contributor says
    so; nothing finer than a band, a country/region and a self-described accent is kept.
    """

    __tablename__ = "contributor_profiles"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True)
    share_age_band: Mapped[bool] = mapped_column(default=False)
    gender: Mapped[str | None] = mapped_column(String(30), nullable=True)
    accent: Mapped[str | None] = mapped_column(String(80), nullable=True)
    share_region: Mapped[bool] = mapped_column(default=False)
    languages: Mapped[list[str]] = mapped_column(JSONValue, default=list)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
