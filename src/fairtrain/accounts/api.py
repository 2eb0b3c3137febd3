"""Accounts API: thin routes that parse, authorise, call one service, shape the answer."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from fairtrain.accounts import profile as profiles
from fairtrain.accounts import service
from fairtrain.accounts.models import ApiKey, User, WebSession
from fairtrain.accounts.policy import OrgAction, authorize_contributor_self, authorize_org
from fairtrain.accounts.principal import Principal
from fairtrain.accounts.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyOut,
    BuyerSignup,
    ContributorSignup,
    LoginRequest,
    MemberCreate,
    MemberOut,
    MeOut,
    OrgOut,
    ProfileIn,
    ProfileOut,
    SessionOut,
)
from fairtrain.config import Settings
from fairtrain.deps import (
    SESSION_COOKIE,
    AuthenticatedDep,
    PasswordsDep,
    SessionDep,
    SettingsDep,
    csrf_token_for,
)
from fairtrain.errors import AuthenticationRequired
from fairtrain.ids import utcnow

__all__ = ["router", "set_session_cookie"]

router = APIRouter(prefix="/api/v1", tags=["accounts"])


def _me(user: User, principal: Principal | None, csrf: str | None) -> MeOut:
    return MeOut(
        id=user.id,
        email=user.email,
        display_name=user.display_name,
        kind=str(user.kind),
        jurisdiction=user.jurisdiction,
        org_id=principal.org_id if principal else None,
        org_role=str(principal.org_role) if principal and principal.org_role else None,
        csrf_token=csrf,
    )


def set_session_cookie(response: Response, settings: Settings, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=settings.session_ttl_seconds,
        httponly=True,
        samesite="lax",
        secure=settings.cookie_secure,
        path="/",
    )


@router.post("/accounts/contributors", status_code=status.HTTP_201_CREATED, response_model=MeOut)
def sign_up_contributor(
    body: ContributorSignup, session: SessionDep, passwords: PasswordsDep
) -> MeOut:
    user = service.register_contributor(
        session,
        passwords,
        email=body.email,
        password=body.password,
        display_name=body.display_name,
        date_of_birth=body.date_of_birth,
        adult_attestation=body.adult_attestation,
        jurisdiction=body.jurisdiction,
    )
    return _me(user, None, None)


@router.post("/accounts/buyers", status_code=status.HTTP_201_CREATED, response_model=MeOut)
def sign_up_buyer(body: BuyerSignup, session: SessionDep, passwords: PasswordsDep) -> MeOut:
    org, user = service.register_buyer_org(
        session,
        passwords,
        org_name=body.org_name,
        email=body.email,
        password=body.password,
        display_name=body.display_name,
        jurisdiction=body.jurisdiction,
    )
    me = _me(user, None, None)
    return me.model_copy(update={"org_id": org.id, "org_role": "admin"})


@router.post("/auth/login", response_model=MeOut)
def log_in(
    body: LoginRequest,
    request: Request,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    passwords: PasswordsDep,
) -> MeOut:
    request.state.commit_on_error = True  # keep the failure count of a wrong password
    user = service.authenticate(
        session,
        passwords,
        service.LoginLimits(settings.login_max_failures, settings.login_lockout_seconds),
        email=body.email,
        password=body.password,
        client=request.client.host if request.client else "unknown",
    )
    request.state.commit_on_error = False
    web_session, token = service.start_session(
        session, user, ttl_seconds=settings.session_ttl_seconds
    )
    set_session_cookie(response, settings, token)
    principal = service.resolve_session(session, token)
    return _me(user, principal, csrf_token_for(settings, web_session.id))


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT)
def log_out(principal: AuthenticatedDep, session: SessionDep, response: Response) -> None:
    if principal.session_id is None:
        raise AuthenticationRequired("API keys are revoked, not logged out.", code="not_a_session")
    service.revoke_session(session, principal, principal.session_id)
    response.delete_cookie(SESSION_COOKIE, path="/")


@router.get("/me", response_model=MeOut)
def who_am_i(principal: AuthenticatedDep, session: SessionDep, settings: SettingsDep) -> MeOut:
    if principal.user_id is None:
        raise AuthenticationRequired(
            "An API key acts for its organisation, not a person; see /api/v1/orgs/{id}.",
            code="not_a_person",
        )
    user = session.get(User, principal.user_id)
    if user is None:
        raise AuthenticationRequired("This account no longer exists.", code="session_expired")
    csrf = csrf_token_for(settings, principal.session_id) if principal.session_id else None
    return _me(user, principal, csrf)


def _session_out(row: WebSession, principal: Principal) -> SessionOut:
    return SessionOut(
        id=row.id,
        created_at=row.created_at,
        expires_at=row.expires_at,
        last_seen_at=row.last_seen_at,
        current=row.id == principal.session_id,
    )


@router.get("/me/sessions", response_model=list[SessionOut])
def my_sessions(principal: AuthenticatedDep, session: SessionDep) -> list[SessionOut]:
    return [_session_out(row, principal) for row in service.list_sessions(session, principal)]


@router.delete("/me/sessions/{session_id}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_my_session(session_id: str, principal: AuthenticatedDep, session: SessionDep) -> None:
    service.revoke_session(session, principal, session_id)


@router.get("/orgs/{org_id}", response_model=OrgOut)
def read_org(org_id: str, principal: AuthenticatedDep, session: SessionDep) -> OrgOut:
    authorize_org(principal, OrgAction.READ, org_id)
    org = service.get_organisation(session, org_id)
    return OrgOut(
        id=org.id, name=org.name, jurisdiction=org.jurisdiction, created_at=org.created_at
    )


@router.get("/orgs/{org_id}/members", response_model=list[MemberOut])
def list_org_members(
    org_id: str, principal: AuthenticatedDep, session: SessionDep
) -> list[MemberOut]:
    authorize_org(principal, OrgAction.READ, org_id)
    service.get_organisation(session, org_id)
    return [
        MemberOut(
            user_id=user.id,
            email=user.email,
            display_name=user.display_name,
            role=str(membership.role),
            created_at=membership.created_at,
        )
        for membership, user in service.list_members(session, org_id)
    ]


@router.post(
    "/orgs/{org_id}/members", status_code=status.HTTP_201_CREATED, response_model=MemberOut
)
def add_org_member(
    org_id: str,
    body: MemberCreate,
    principal: AuthenticatedDep,
    session: SessionDep,
    passwords: PasswordsDep,
) -> MemberOut:
    authorize_org(principal, OrgAction.MANAGE_MEMBERS, org_id)
    membership, user = service.add_member(
        session,
        passwords,
        principal,
        org_id=org_id,
        email=body.email,
        password=body.password,
        display_name=body.display_name,
        role=body.role,
    )
    return MemberOut(
        user_id=user.id,
        email=user.email,
        display_name=user.display_name,
        role=str(membership.role),
        created_at=membership.created_at,
    )


@router.delete("/orgs/{org_id}/members/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
def remove_org_member(
    org_id: str, user_id: str, principal: AuthenticatedDep, session: SessionDep
) -> None:
    authorize_org(principal, OrgAction.MANAGE_MEMBERS, org_id)
    service.remove_member(session, principal, org_id=org_id, user_id=user_id)


def _key_out(key: ApiKey) -> ApiKeyOut:
    return ApiKeyOut(
        id=key.id,
        name=key.name,
        prefix=key.prefix,
        scopes=list(key.scopes),
        created_at=key.created_at,
        last_used_at=key.last_used_at,
        revoked_at=key.revoked_at,
    )


@router.get("/orgs/{org_id}/api-keys", response_model=list[ApiKeyOut])
def list_org_api_keys(
    org_id: str, principal: AuthenticatedDep, session: SessionDep
) -> list[ApiKeyOut]:
    authorize_org(principal, OrgAction.MANAGE_KEYS, org_id)
    return [_key_out(key) for key in service.list_api_keys(session, org_id)]


@router.post(
    "/orgs/{org_id}/api-keys", status_code=status.HTTP_201_CREATED, response_model=ApiKeyCreated
)
def create_org_api_key(
    org_id: str, body: ApiKeyCreate, principal: AuthenticatedDep, session: SessionDep
) -> ApiKeyCreated:
    authorize_org(principal, OrgAction.MANAGE_KEYS, org_id)
    key, secret = service.create_api_key(
        session, principal, org_id=org_id, name=body.name, scopes=body.scopes
    )
    return ApiKeyCreated(**_key_out(key).model_dump(), secret=secret)


@router.delete("/orgs/{org_id}/api-keys/{key_id}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_org_api_key(
    org_id: str, key_id: str, principal: AuthenticatedDep, session: SessionDep
) -> None:
    authorize_org(principal, OrgAction.MANAGE_KEYS, org_id)
    service.revoke_api_key(session, principal, org_id=org_id, key_id=key_id)


def _profile_out(session: SessionDep, user_id: str) -> ProfileOut:
    user = session.get(User, user_id)
    assert user is not None
    profile = profiles.get_profile(session, user_id)
    shown = profiles.demographics_of(user, profile, utcnow().date())
    return ProfileOut(
        share_age_band=profile.share_age_band,
        gender=profile.gender,
        accent=profile.accent,
        share_region=profile.share_region,
        languages=list(profile.languages or []),
        shown_to_buyers={
            "age_band": shown.age_band,
            "gender": shown.gender,
            "accent": shown.accent,
            "region": shown.region,
            "languages": list(shown.languages),
        },
    )


@router.get("/me/profile", response_model=ProfileOut)
def read_my_profile(principal: AuthenticatedDep, session: SessionDep) -> ProfileOut:
    user_id = authorize_contributor_self(principal)
    return _profile_out(session, user_id)


@router.put("/me/profile", response_model=ProfileOut)
def update_my_profile(
    body: ProfileIn, principal: AuthenticatedDep, session: SessionDep
) -> ProfileOut:
    user_id = authorize_contributor_self(principal)
    profiles.update_profile(
        session,
        user_id,
        share_age_band=body.share_age_band,
        gender=body.gender,
        accent=body.accent,
        share_region=body.share_region,
        languages=body.languages,
    )
    return _profile_out(session, user_id)
