"""Account operations: sign-up, login with throttling, sessions, organisations, API keys.

Services take a database session and plain values; they flush and never commit (the
request or CLI command owns the transaction). Every state change appends an audit event.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import pycountry
from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fairtrain.accounts.models import (
    ApiKey,
    LoginThrottle,
    Membership,
    Organisation,
    OrgRole,
    User,
    UserKind,
    WebSession,
)
from fairtrain.accounts.passwords import PasswordPolicy, check_strength
from fairtrain.accounts.principal import API_KEY_SCOPES, Principal
from fairtrain.audit.service import append_event
from fairtrain.consent.jurisdiction import minimum_age
from fairtrain.errors import (
    AuthenticationRequired,
    Conflict,
    InvalidInput,
    NotFound,
    RateLimited,
)
from fairtrain.ids import new_id, utcnow

__all__ = [
    "ADULT_AGE",
    "API_KEY_PREFIX",
    "LoginLimits",
    "add_member",
    "authenticate",
    "create_api_key",
    "create_staff_user",
    "get_organisation",
    "list_api_keys",
    "list_members",
    "list_sessions",
    "normalise_email",
    "normalise_jurisdiction",
    "register_buyer_org",
    "register_contributor",
    "remove_member",
    "resolve_api_key",
    "resolve_session",
    "revoke_api_key",
    "revoke_session",
    "start_session",
]

ADULT_AGE = 18
API_KEY_PREFIX = "ftk"
# last_used_at is bookkeeping, not a state change worth a write per request.
_API_KEY_TOUCH_INTERVAL = timedelta(minutes=1)
_SESSION_TOUCH_INTERVAL = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class LoginLimits:
    max_failures: int
    lockout_seconds: int


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def normalise_email(email: str) -> str:
    try:
        checked = validate_email(email.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidInput(
            f"That e-mail address is not valid: {exc}", code="invalid_email", pointer="/email"
        ) from exc
    return checked.normalized.lower()


def normalise_jurisdiction(code: str) -> str:
    """ISO 3166-1 alpha-2 country (``DE``) or ISO 3166-2 subdivision (``US-IL``)."""
    value = code.strip().upper()
    if "-" in value:
        if pycountry.subdivisions.get(code=value) is None:  # type: ignore[no-untyped-call]
            raise InvalidInput(
                f"'{code}' is not an ISO 3166-2 region code such as US-IL.",
                code="unknown_jurisdiction",
                pointer="/jurisdiction",
            )
        return value
    if len(value) != 2 or pycountry.countries.get(alpha_2=value) is None:
        raise InvalidInput(
            f"'{code}' is not an ISO 3166 country code such as DE or US-IL.",
            code="unknown_jurisdiction",
            pointer="/jurisdiction",
        )
    return value


def _age_on(born: date, today: date) -> int:
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def _insert_user(session: Session, user: User) -> None:
    existing = session.scalar(select(User.id).where(User.email == user.email))
    if existing is not None:
        raise Conflict(
            "An account with this e-mail address already exists.",
            code="email_taken",
            pointer="/email",
        )
    session.add(user)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:  # a concurrent sign-up won the race
        raise Conflict(
            "An account with this e-mail address already exists.",
            code="email_taken",
            pointer="/email",
        ) from exc


def register_contributor(
    session: Session,
    passwords: PasswordPolicy,
    *,
    email: str,
    password: str,
    display_name: str,
    date_of_birth: date,
    adult_attestation: bool,
    jurisdiction: str,
    today: date | None = None,
) -> User:
    now = utcnow()
    today = today or now.date()
    if not adult_attestation:
        raise InvalidInput(
            "You must confirm that you are 18 or older to license your data.",
            code="adult_attestation_required",
            pointer="/adult_attestation",
        )
    if date_of_birth > today:
        raise InvalidInput(
            "The date of birth is in the future.",
            code="invalid_date_of_birth",
            pointer="/date_of_birth",
        )
    region = normalise_jurisdiction(jurisdiction)
    # 18 everywhere; more where the age of majority is higher (a younger person's
    # contract would be voidable there).
    needed = max(ADULT_AGE, minimum_age(region))
    if _age_on(date_of_birth, today) < needed:
        raise InvalidInput(
            f"You must be at least {needed} years old to license your data here.",
            code="under_age",
            pointer="/date_of_birth",
        )
    address = normalise_email(email)
    name = _display_name(display_name)
    check_strength(password, user_inputs=[address, name])
    user = User(
        id=new_id("usr"),
        email=address,
        display_name=name,
        kind=UserKind.CONTRIBUTOR,
        password_hash=passwords.hash(password),
        date_of_birth=date_of_birth,
        adult_attested_at=now,
        jurisdiction=region,
        created_at=now,
    )
    _insert_user(session, user)
    append_event(
        session,
        actor=f"user:{user.id}",
        action="account.contributor_registered",
        subject=f"user:{user.id}",
        payload={"jurisdiction": region, "adult_attested": True},
    )
    return user


def _display_name(value: str) -> str:
    name = " ".join(value.split())
    if not 1 <= len(name) <= 120:
        raise InvalidInput(
            "Give a name of 1 to 120 characters.", code="invalid_name", pointer="/display_name"
        )
    return name


def register_buyer_org(
    session: Session,
    passwords: PasswordPolicy,
    *,
    org_name: str,
    email: str,
    password: str,
    display_name: str,
    jurisdiction: str,
) -> tuple[Organisation, User]:
    """A buyer organisation and its first admin, created together."""
    now = utcnow()
    address = normalise_email(email)
    region = normalise_jurisdiction(jurisdiction)
    name = _display_name(display_name)
    organisation_name = " ".join(org_name.split())
    if not 1 <= len(organisation_name) <= 200:
        raise InvalidInput(
            "Give an organisation name of 1 to 200 characters.",
            code="invalid_name",
            pointer="/org_name",
        )
    check_strength(password, user_inputs=[address, name, organisation_name])
    org = Organisation(
        id=new_id("org"), name=organisation_name, jurisdiction=region, created_at=now
    )
    user = User(
        id=new_id("usr"),
        email=address,
        display_name=name,
        kind=UserKind.BUYER,
        password_hash=passwords.hash(password),
        jurisdiction=region,
        created_at=now,
    )
    _insert_user(session, user)
    session.add(org)
    session.add(
        Membership(
            id=new_id("mem"), org_id=org.id, user_id=user.id, role=OrgRole.ADMIN, created_at=now
        )
    )
    session.flush()
    append_event(
        session,
        actor=f"user:{user.id}",
        action="account.buyer_org_registered",
        subject=f"org:{org.id}",
        payload={"admin": f"user:{user.id}", "jurisdiction": region},
    )
    return org, user


def create_staff_user(
    session: Session,
    passwords: PasswordPolicy,
    *,
    kind: UserKind,
    email: str,
    password: str,
    display_name: str,
    actor: str,
) -> User:
    """Operators and auditors are created by the CLI (or an operator), never by sign-up."""
    if kind not in (UserKind.OPERATOR, UserKind.AUDITOR):
        raise InvalidInput(
            "Only operator and auditor accounts are created this way.",
            code="invalid_kind",
            pointer="/kind",
        )
    address = normalise_email(email)
    name = _display_name(display_name)
    check_strength(password, user_inputs=[address, name])
    user = User(
        id=new_id("usr"),
        email=address,
        display_name=name,
        kind=kind,
        password_hash=passwords.hash(password),
        created_at=utcnow(),
    )
    _insert_user(session, user)
    append_event(
        session,
        actor=actor,
        action="account.staff_created",
        subject=f"user:{user.id}",
        payload={"kind": kind.value},
    )
    return user


# --- login, throttling and sessions -------------------------------------------------------


def _throttle_row(session: Session, key: str) -> LoginThrottle | None:
    return session.get(LoginThrottle, key)


def _check_not_locked(session: Session, keys: list[str], now: datetime) -> None:
    for key in keys:
        row = _throttle_row(session, key)
        if row is not None and row.locked_until is not None and row.locked_until > now:
            wait = int((row.locked_until - now).total_seconds()) + 1
            raise RateLimited(
                f"Too many failed logins. Try again in {wait} seconds.",
                code="login_throttled",
                retry_after=wait,
            )


def _record_failure(session: Session, keys: list[str], limits: LoginLimits, now: datetime) -> None:
    window = timedelta(seconds=limits.lockout_seconds)
    for key in keys:
        row = _throttle_row(session, key)
        if row is None:
            row = LoginThrottle(key=key, failures=0, window_started_at=now)
            session.add(row)
        if now - row.window_started_at > window:
            row.failures = 0
            row.window_started_at = now
            row.locked_until = None
        row.failures += 1
        if row.failures >= limits.max_failures:
            row.locked_until = now + window
    session.flush()


def authenticate(
    session: Session,
    passwords: PasswordPolicy,
    limits: LoginLimits,
    *,
    email: str,
    password: str,
    client: str,
) -> User:
    """Check a password, throttled per address and per client.

    A failure is recorded even though the request fails: the caller must commit the
    session on ``AuthenticationRequired`` (the API edge does), or throttling would never
    engage.
    """
    now = utcnow()
    address = email.strip().lower()
    keys = [f"email:{address}", f"client:{client}"]
    _check_not_locked(session, keys, now)
    user = session.scalar(select(User).where(User.email == address))
    # Hash even when the user does not exist, so timing does not reveal accounts.
    ok = passwords.verify(user.password_hash if user else _DUMMY_HASH.get(passwords), password)
    if user is None or not ok or user.disabled_at is not None:
        _record_failure(session, keys, limits, now)
        append_event(
            session,
            actor="anonymous",
            action="auth.login_failed",
            subject=f"user:{user.id}" if user else "account:unknown",
            payload={},
        )
        raise AuthenticationRequired(
            "The e-mail address or password is wrong.", code="invalid_credentials"
        )
    row = _throttle_row(session, keys[0])
    if row is not None:
        session.delete(row)
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash(password)
    return user


class _DummyHash:
    """One argon2 hash per policy, computed lazily, for unknown-user timing equalisation."""

    def __init__(self) -> None:
        self._cache: dict[int, str] = {}

    def get(self, passwords: PasswordPolicy) -> str:
        key = id(passwords)
        if key not in self._cache:
            self._cache[key] = passwords.hash(secrets.token_urlsafe(16))
        return self._cache[key]


_DUMMY_HASH = _DummyHash()


def start_session(session: Session, user: User, *, ttl_seconds: int) -> tuple[WebSession, str]:
    """Create a web session; returns the row and the cookie token (shown once)."""
    now = utcnow()
    token = secrets.token_urlsafe(32)
    web_session = WebSession(
        id=new_id("ses"),
        token_hash=_sha256(token),
        user_id=user.id,
        created_at=now,
        expires_at=now + timedelta(seconds=ttl_seconds),
        last_seen_at=now,
    )
    session.add(web_session)
    session.flush()
    append_event(
        session,
        actor=f"user:{user.id}",
        action="auth.session_started",
        subject=f"session:{web_session.id}",
        payload={"expires_at": web_session.expires_at.isoformat()},
    )
    return web_session, token


def _principal_for_user(session: Session, user: User, *, session_id: str) -> Principal:
    org_id = None
    org_role = None
    if user.kind == UserKind.BUYER:
        membership = session.scalar(select(Membership).where(Membership.user_id == user.id))
        if membership is not None:
            org_id, org_role = membership.org_id, OrgRole(membership.role)
    return Principal(
        user_id=user.id,
        kind=UserKind(user.kind),
        org_id=org_id,
        org_role=org_role,
        via="session",
        session_id=session_id,
    )


def resolve_session(session: Session, token: str) -> Principal | None:
    """The principal behind a session cookie, or None when it is unknown, expired or revoked."""
    row = session.scalar(select(WebSession).where(WebSession.token_hash == _sha256(token)))
    now = utcnow()
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        return None
    user = session.get(User, row.user_id)
    if user is None or user.disabled_at is not None:
        return None
    if now - row.last_seen_at > _SESSION_TOUCH_INTERVAL:
        row.last_seen_at = now
    return _principal_for_user(session, user, session_id=row.id)


def list_sessions(session: Session, principal: Principal) -> list[WebSession]:
    if principal.user_id is None:
        raise AuthenticationRequired("Log in first.")
    return list(
        session.scalars(
            select(WebSession)
            .where(WebSession.user_id == principal.user_id, WebSession.revoked_at.is_(None))
            .order_by(WebSession.created_at.desc())
        )
    )


def revoke_session(session: Session, principal: Principal, session_id: str) -> WebSession:
    row = session.get(WebSession, session_id)
    # Another person's session is reported as missing, not forbidden: no existence oracle.
    if row is None or row.user_id != principal.user_id:
        raise NotFound("No such session.", code="session_not_found")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        append_event(
            session,
            actor=principal.ref,
            action="auth.session_revoked",
            subject=f"session:{row.id}",
            payload={},
        )
    return row


# --- organisations -----------------------------------------------------------------------


def get_organisation(session: Session, org_id: str) -> Organisation:
    org = session.get(Organisation, org_id)
    if org is None:
        raise NotFound("No such organisation.", code="org_not_found")
    return org


def list_members(session: Session, org_id: str) -> list[tuple[Membership, User]]:
    rows = session.execute(
        select(Membership, User)
        .join(User, User.id == Membership.user_id)
        .where(Membership.org_id == org_id)
        .order_by(Membership.created_at)
    )
    return [(m, u) for m, u in rows]


def add_member(
    session: Session,
    passwords: PasswordPolicy,
    principal: Principal,
    *,
    org_id: str,
    email: str,
    password: str,
    display_name: str,
    role: OrgRole,
) -> tuple[Membership, User]:
    org = get_organisation(session, org_id)
    address = normalise_email(email)
    name = _display_name(display_name)
    check_strength(password, user_inputs=[address, name, org.name])
    now = utcnow()
    user = User(
        id=new_id("usr"),
        email=address,
        display_name=name,
        kind=UserKind.BUYER,
        password_hash=passwords.hash(password),
        jurisdiction=org.jurisdiction,
        created_at=now,
    )
    _insert_user(session, user)
    membership = Membership(
        id=new_id("mem"), org_id=org.id, user_id=user.id, role=role, created_at=now
    )
    session.add(membership)
    session.flush()
    append_event(
        session,
        actor=principal.ref,
        action="org.member_added",
        subject=f"org:{org.id}",
        payload={"user": f"user:{user.id}", "role": role.value},
    )
    return membership, user


def remove_member(session: Session, principal: Principal, *, org_id: str, user_id: str) -> None:
    membership = session.scalar(
        select(Membership).where(Membership.org_id == org_id, Membership.user_id == user_id)
    )
    if membership is None:
        raise NotFound("No such member.", code="member_not_found")
    if membership.role == OrgRole.ADMIN:
        admins = session.scalars(
            select(Membership).where(Membership.org_id == org_id, Membership.role == OrgRole.ADMIN)
        ).all()
        if len(admins) == 1:
            raise Conflict(
                "An organisation needs at least one admin; appoint another first.",
                code="last_admin",
            )
    user = session.get(User, user_id)
    session.delete(membership)
    if user is not None:
        # A buyer account exists only through its organisation: removing it disables it
        # and ends its sessions at once.
        user.disabled_at = utcnow()
        for row in session.scalars(
            select(WebSession).where(WebSession.user_id == user_id, WebSession.revoked_at.is_(None))
        ):
            row.revoked_at = utcnow()
    session.flush()
    append_event(
        session,
        actor=principal.ref,
        action="org.member_removed",
        subject=f"org:{org_id}",
        payload={"user": f"user:{user_id}"},
    )


# --- API keys ------------------------------------------------------------------------------


def create_api_key(
    session: Session, principal: Principal, *, org_id: str, name: str, scopes: list[str]
) -> tuple[ApiKey, str]:
    """Create a key; returns the row and the full secret, which is never shown again."""
    get_organisation(session, org_id)
    unknown = sorted(set(scopes) - API_KEY_SCOPES)
    if unknown:
        raise InvalidInput(
            f"Unknown scope(s): {', '.join(unknown)}. Known: {', '.join(sorted(API_KEY_SCOPES))}.",
            code="unknown_scope",
            pointer="/scopes",
        )
    if not scopes:
        raise InvalidInput("Give the key at least one scope.", code="no_scopes", pointer="/scopes")
    label = " ".join(name.split())
    if not 1 <= len(label) <= 120:
        raise InvalidInput(
            "Give the key a name of 1 to 120 characters.", code="invalid_name", pointer="/name"
        )
    prefix = secrets.token_hex(6)
    secret = f"{API_KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    if principal.user_id is None:
        raise AuthenticationRequired("Log in first.")
    key = ApiKey(
        id=new_id("key"),
        org_id=org_id,
        created_by=principal.user_id,
        name=label,
        prefix=prefix,
        secret_hash=_sha256(secret),
        scopes=sorted(set(scopes)),
        created_at=utcnow(),
    )
    session.add(key)
    session.flush()
    append_event(
        session,
        actor=principal.ref,
        action="org.api_key_created",
        subject=f"apikey:{key.id}",
        payload={"org": f"org:{org_id}", "scopes": key.scopes},
    )
    return key, secret


def resolve_api_key(session: Session, secret: str) -> Principal | None:
    parts = secret.split("_")
    if len(parts) < 3 or parts[0] != API_KEY_PREFIX:
        return None
    key = session.scalar(select(ApiKey).where(ApiKey.prefix == parts[1]))
    if key is None or key.revoked_at is not None:
        return None
    if not hmac.compare_digest(key.secret_hash, _sha256(secret)):
        return None
    now = utcnow()
    if key.last_used_at is None or now - key.last_used_at > _API_KEY_TOUCH_INTERVAL:
        key.last_used_at = now
    return Principal(
        user_id=None,
        kind=UserKind.BUYER,
        org_id=key.org_id,
        org_role=None,
        via="api_key",
        scopes=frozenset(key.scopes),
        api_key_id=key.id,
    )


def list_api_keys(session: Session, org_id: str) -> list[ApiKey]:
    return list(
        session.scalars(
            select(ApiKey).where(ApiKey.org_id == org_id).order_by(ApiKey.created_at.desc())
        )
    )


def revoke_api_key(session: Session, principal: Principal, *, org_id: str, key_id: str) -> ApiKey:
    key = session.get(ApiKey, key_id)
    if key is None or key.org_id != org_id:
        raise NotFound("No such API key.", code="api_key_not_found")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        append_event(
            session,
            actor=principal.ref,
            action="org.api_key_revoked",
            subject=f"apikey:{key.id}",
            payload={"org": f"org:{org_id}"},
        )
    return key
