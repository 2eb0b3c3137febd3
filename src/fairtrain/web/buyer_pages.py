"""A buyer's pages: search the catalogue with facets, build a dataset (selection, purpose,
territory and term; the representation chart and every exclusion with its reason), take a
quote, place the order, and read licences with their downloads.

The pages call the same services as the API, under the same policies: members look,
build and quote; only an organisation's admin places orders.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from itertools import product
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import select
from starlette.datastructures import QueryParams

from fairtrain.accounts.models import OrgRole, UserKind
from fairtrain.accounts.principal import Principal
from fairtrain.catalog import service as catalog
from fairtrain.catalog.api import CatalogParams, licence_ask
from fairtrain.catalog.policy import BuyerAction, authorize_buyer, authorize_catalog_read
from fairtrain.consent import purposes
from fairtrain.datasets import service as datasets
from fairtrain.datasets.models import Dataset, DatasetVersion
from fairtrain.delivery import service as delivery
from fairtrain.delivery.api import DOWNLOAD_PREFIX
from fairtrain.deps import PrincipalDep, SessionDep
from fairtrain.errors import DomainError, InvalidInput, NotFound
from fairtrain.ids import utcnow
from fairtrain.licensing import service as licensing
from fairtrain.licensing.models import Licence
from fairtrain.licensing.payments import method
from fairtrain.licensing.policy import authorize_spend
from fairtrain.money import format_money
from fairtrain.web.charts import BarChart, bar_chart
from fairtrain.web.pages import in_person, render

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

# The facets a buyer filters by on the page, in the order shown, with their names.
FACET_NAMES = {
    "modality": "Kind of media",
    "language": "Language",
    "age_band": "Age band",
    "gender": "Gender",
    "region": "Region",
}
BALANCE_DIMENSIONS = {"age_band": "Age band", "gender": "Gender"}
SORTS = {
    "newest": "Newest",
    "oldest": "Oldest",
    "longest": "Longest",
    "shortest": "Shortest",
    "cheapest": "Cheapest",
}
# Exclusions listed on the dataset page (the API lists them all).
EXCLUSIONS_SHOWN = 50


def purpose_choices() -> list[tuple[str, str]]:
    return [(p.key, f"{p.label} ({p.words})") for p in purposes.PURPOSES.values()]


def _validation_error(error: ValidationError) -> InvalidInput:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "the form"
    message = str(first["msg"]).removeprefix("Value error, ")
    return InvalidInput(f"Check {where}: {message}.", code="invalid_search")


def _search_params(query: QueryParams) -> CatalogParams:
    """The catalogue form's fields as the API's parameters (empty fields left out)."""
    values: dict[str, Any] = {}
    for name in FACET_NAMES:
        chosen = [v for v in query.getlist(name) if v]
        if chosen:
            values[name] = chosen
    for name in ("purpose", "territory", "term_days", "currency", "sort", "cursor"):
        value = query.get(name, "").strip()
        if value:
            values[name] = value
    try:
        return CatalogParams(**values, limit=25)
    except ValidationError as error:
        raise _validation_error(error) from None


@router.get("/catalogue", response_class=HTMLResponse)
def catalogue_page(request: Request, principal: PrincipalDep, session: SessionDep) -> Response:
    if not in_person(principal):
        return RedirectResponse("/login", status_code=303)
    org_id = authorize_catalog_read(principal)
    settings = request.app.state.settings
    error: DomainError | None = None
    page: catalog.SearchPage | None = None
    params = CatalogParams(limit=25)
    try:
        params = _search_params(request.query_params)
        ask = None
        if params.purpose and params.territory:
            ask = licence_ask(
                request,
                purpose=params.purpose,
                territory=params.territory,
                term_days=params.term_days,
                currency=params.currency,
                org_id=org_id,
            )
        page = catalog.search(
            session, settings, params.to_query(ask, params.sort), limit=25, cursor=params.cursor
        )
    except DomainError as caught:
        error = caught
    chosen = {name: set(request.query_params.getlist(name)) for name in FACET_NAMES}
    next_query = None
    if page is not None and page.next_cursor:
        pairs = [(k, v) for k, v in request.query_params.multi_items() if k != "cursor"]
        next_query = str(QueryParams([*pairs, ("cursor", page.next_cursor)]))
    return render(
        request,
        "catalogue.html",
        principal,
        status_code=error.status if error else 200,
        error=error,
        page=page,
        params=params,
        form=request.query_params,
        chosen=chosen,
        facet_names=FACET_NAMES,
        sorts=SORTS,
        purposes=purpose_choices(),
        next_query=next_query,
        money=format_money,
    )


# -- datasets ------------------------------------------------------------------------------


def _datasets_page(
    request: Request,
    principal: Principal,
    session: SessionDep,
    *,
    status_code: int = 200,
    error: DomainError | None = None,
    form: Mapping[str, Any] | None = None,
) -> Response:
    org_id = authorize_buyer(principal, BuyerAction.DATASETS_WRITE)
    return render(
        request,
        "datasets.html",
        principal,
        status_code=status_code,
        error=error,
        form=form or {"term_days": 365, "currency": "EUR"},
        datasets=datasets.list_datasets(session, org_id),
        purposes=purpose_choices(),
        balance_dimensions=BALANCE_DIMENSIONS,
        modalities=["audio", "image", "video", "chat", "text", "document"],
    )


@router.get("/datasets", response_class=HTMLResponse)
def datasets_page(request: Request, principal: PrincipalDep, session: SessionDep) -> Response:
    if not in_person(principal):
        return RedirectResponse("/login", status_code=303)
    return _datasets_page(request, principal, session)


def equal_targets(
    facets: Mapping[str, Mapping[str, int]], dimensions: list[str]
) -> dict[str, Any] | None:
    """Equal shares for every combination of the shared values the selection has (those
    who keep a value private cannot be balanced on it)."""
    if not dimensions:
        return None
    values = [
        sorted(v for v, n in facets.get(d, {}).items() if n > 0 and v != catalog.NOT_SHARED)
        for d in dimensions
    ]
    groups = ["|".join(combo) for combo in product(*values)]
    if not groups:
        raise InvalidInput(
            "Nothing in this selection shares those details, so it cannot be balanced on "
            "them; untick the balance or widen the selection.",
            code="nothing_to_balance",
            pointer="/balance",
        )
    share = 1.0 / len(groups)
    shares = dict.fromkeys(groups, share)
    # The last group takes the rounding, so the shares add up to exactly 1.
    shares[groups[-1]] = 1.0 - share * (len(groups) - 1)
    return {"dimensions": dimensions, "shares": shares}


@router.post("/datasets", response_class=HTMLResponse)
def datasets_create(
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    name: Annotated[str, Form(max_length=200)],
    purpose: Annotated[str, Form(max_length=60)],
    # Generous limits: the API's parameters check the values and the page says what is
    # wrong next to what was typed.
    territory: Annotated[str, Form(max_length=20)],
    term_days: Annotated[str, Form(max_length=20)] = "365",
    currency: Annotated[str, Form(max_length=20)] = "EUR",
    modality: Annotated[list[str] | None, Form(max_length=10)] = None,
    language: Annotated[str, Form(max_length=16)] = "",
    size: Annotated[str, Form(max_length=12)] = "",
    balance: Annotated[list[str] | None, Form(max_length=2)] = None,
    description: Annotated[str, Form(max_length=5000)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    if not in_person(principal):
        return RedirectResponse("/login", status_code=303)
    org_id = authorize_buyer(principal, BuyerAction.DATASETS_WRITE)
    settings = request.app.state.settings
    form = {
        "name": name,
        "purpose": purpose,
        "territory": territory,
        "term_days": term_days,
        "currency": currency,
        "modality": modality or [],
        "language": language,
        "size": size,
        "balance": balance or [],
        "description": description,
    }
    try:
        try:
            days = int(term_days)
            wanted = float(size) if size.strip() else None
        except ValueError:
            raise InvalidInput(
                "The term is a whole number of days and the size a number of items.",
                code="invalid_number",
            ) from None
        try:
            params = CatalogParams(
                modality=modality or [],
                language=[language.strip()] if language.strip() else [],
                purpose=purpose,
                territory=territory,
                term_days=days,
                currency=currency,
                limit=1,
            )
        except ValidationError as error:
            raise _validation_error(error) from None
        if wanted is not None and wanted <= 0:
            raise InvalidInput("The size is more than zero.", code="invalid_size")
        for dimension in balance or []:
            if dimension not in BALANCE_DIMENSIONS:
                raise InvalidInput("Balance by age band or gender.", code="invalid_balance")
        with session.begin_nested():
            ask = licence_ask(
                request,
                purpose=purpose,
                territory=territory,
                term_days=days,
                currency=currency,
                org_id=org_id,
            )
            selection = params.to_query()
            targets = None
            if balance:
                found = catalog.search(
                    session, settings, params.to_query(ask), limit=1, cursor=None
                )
                targets = equal_targets(found.facets, list(balance))
            dataset = datasets.create_dataset(
                session,
                settings,
                org_id=org_id,
                actor=principal.ref,
                name=name,
                description=description,
                purpose=purpose,
                territory=territory,
                term_days=days,
                currency=currency,
                query=selection,
                targets=targets,
                size=wanted,
            )
            datasets.build_version(session, settings, dataset, actor=principal.ref)
    except DomainError as error:
        return _datasets_page(
            request, principal, session, status_code=error.status, error=error, form=form
        )
    return RedirectResponse(f"/datasets/{dataset.id}", status_code=303)


def _owned_dataset(principal: Principal, session: SessionDep, dataset_id: str) -> Dataset:
    org_id = authorize_buyer(principal, BuyerAction.DATASETS_WRITE)
    try:
        dataset = datasets.get_dataset(session, dataset_id)
    except NotFound:
        dataset = None
    if dataset is None or dataset.org_id != org_id:
        raise NotFound("No such dataset.", code="dataset_not_found")
    return dataset


def representation_chart(version: DatasetVersion) -> BarChart:
    """Each group's share of the version, with its target when the dataset has one."""
    report = version.representation
    groups = report.get("groups", [])
    rows = [
        (str(g["label"]), float(g["share"]), f"{float(g['share']):.1%} ({g['count']})")
        for g in groups
    ]
    targets = [
        (float(g["target_share"]), f"{float(g['target_share']):.1%}")
        if g.get("target_share") is not None
        else None
        for g in groups
    ]
    dims = " × ".join(d.replace("_", " ") for d in report.get("dimensions", [])) or "group"
    return bar_chart(
        f"Share of the dataset by {dims}",
        rows,
        targets=targets if any(t is not None for t in targets) else None,
        scale_max=1.0,
    )


def catalogue_link(dataset: Dataset) -> str:
    """The catalogue search for the dataset's licence and selection: what fits now."""
    stored = dataset.selection.get("query", {})
    pairs = [
        ("purpose", dataset.purpose),
        ("territory", dataset.territory),
        ("term_days", str(dataset.term_days)),
    ]
    for field, param in (("modalities", "modality"), ("languages", "language"),
                         ("age_bands", "age_band"), ("genders", "gender"),
                         ("regions", "region")):  # fmt: skip
        pairs += [(param, str(value)) for value in stored.get(field, [])]
    return "/catalogue?" + str(QueryParams(pairs))


def _dataset_page(
    request: Request,
    principal: Principal,
    session: SessionDep,
    dataset: Dataset,
    *,
    status_code: int = 200,
    error: DomainError | None = None,
) -> Response:
    version = (
        session.get(DatasetVersion, dataset.latest_version_id)
        if dataset.latest_version_id
        else None
    )
    exclusions = (
        datasets.version_exclusions(session, version.id, limit=EXCLUSIONS_SHOWN) if version else []
    )
    return render(
        request,
        "dataset.html",
        principal,
        status_code=status_code,
        error=error,
        dataset=dataset,
        dsv=version,  # not "version": that is the app's version in every page's footer
        versions=datasets.versions_of(session, dataset.id),
        exclusions=exclusions,
        exclusions_shown=EXCLUSIONS_SHOWN,
        chart=representation_chart(version) if version else None,
        catalogue_link=catalogue_link(dataset),
        purpose=purposes.PURPOSES.get(dataset.purpose),
        money=format_money,
    )


@router.get("/datasets/{dataset_id}", response_class=HTMLResponse)
def dataset_page(
    dataset_id: str, request: Request, principal: PrincipalDep, session: SessionDep
) -> Response:
    if not in_person(principal):
        return RedirectResponse("/login", status_code=303)
    dataset = _owned_dataset(principal, session, dataset_id)
    return _dataset_page(request, principal, session, dataset)


@router.post("/datasets/{dataset_id}/rebuild", response_class=HTMLResponse)
def dataset_rebuild(
    dataset_id: str, request: Request, principal: PrincipalDep, session: SessionDep
) -> Response:
    if not in_person(principal):
        return RedirectResponse("/login", status_code=303)
    dataset = _owned_dataset(principal, session, dataset_id)
    try:
        with session.begin_nested():
            datasets.build_version(
                session, request.app.state.settings, dataset, actor=principal.ref, reason="rebuild"
            )
    except DomainError as error:
        return _dataset_page(
            request, principal, session, dataset, status_code=error.status, error=error
        )
    return RedirectResponse(f"/datasets/{dataset.id}", status_code=303)


@router.post("/datasets/{dataset_id}/quote", response_class=HTMLResponse)
def dataset_quote(
    dataset_id: str, request: Request, principal: PrincipalDep, session: SessionDep
) -> Response:
    """A quote for the dataset's newest version."""
    if not in_person(principal):
        return RedirectResponse("/login", status_code=303)
    dataset = _owned_dataset(principal, session, dataset_id)
    org_id = authorize_buyer(principal, BuyerAction.LICENCES_WRITE)
    try:
        if dataset.latest_version_id is None:
            raise InvalidInput("This dataset has no version to quote yet.", code="no_version")
        with session.begin_nested():
            quote = licensing.quote_version(
                session,
                request.app.state.settings,
                org_id=org_id,
                version_id=dataset.latest_version_id,
                actor=principal.ref,
            )
    except DomainError as error:
        return _dataset_page(
            request, principal, session, dataset, status_code=error.status, error=error
        )
    return RedirectResponse(f"/quotes/{quote.id}", status_code=303)


# -- quotes, orders, licences --------------------------------------------------------------


def _quote_page(
    request: Request,
    principal: Principal,
    session: SessionDep,
    quote_id: str,
    *,
    status_code: int = 200,
    error: DomainError | None = None,
) -> Response:
    org_id = authorize_buyer(principal, BuyerAction.LICENCES_WRITE)
    quote = licensing.get_quote(session, quote_id, org_id)
    dataset = datasets.get_dataset(session, quote.dataset_id)
    return render(
        request,
        "quote.html",
        principal,
        status_code=status_code,
        error=error,
        quote=quote,
        dataset=dataset,
        lines=licensing.quote_items(session, quote),
        may_order=principal.org_role == OrgRole.ADMIN,
        expired=quote.expires_at <= utcnow(),
        # A fresh key per rendering: submitting this form twice places one order.
        idempotency_key=secrets.token_urlsafe(18),
        purpose=purposes.PURPOSES.get(quote.purpose),
        money=format_money,
    )


@router.get("/quotes/{quote_id}", response_class=HTMLResponse)
def quote_page(
    quote_id: str, request: Request, principal: PrincipalDep, session: SessionDep
) -> Response:
    if not in_person(principal):
        return RedirectResponse("/login", status_code=303)
    return _quote_page(request, principal, session, quote_id)


@router.post("/quotes/{quote_id}/order", response_class=HTMLResponse)
def quote_order(
    quote_id: str,
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    idempotency_key: Annotated[str, Form(min_length=8, max_length=200)],
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    if not in_person(principal):
        return RedirectResponse("/login", status_code=303)
    org_id = authorize_spend(principal)
    try:
        with session.begin_nested():
            order, _ = licensing.place_order(
                session,
                request.app.state.settings,
                quote_id=quote_id,
                org_id=org_id,
                idempotency_key=idempotency_key,
                actor=principal.ref,
            )
    except DomainError as error:
        return _quote_page(
            request, principal, session, quote_id, status_code=error.status, error=error
        )
    return RedirectResponse(f"/orders/{order.id}", status_code=303)


def _buyer_org(principal: Principal) -> str:
    return authorize_buyer(principal, BuyerAction.LICENCES_WRITE)


@router.get("/orders", response_class=HTMLResponse)
def orders_page(request: Request, principal: PrincipalDep, session: SessionDep) -> Response:
    if not in_person(principal):
        return RedirectResponse("/login", status_code=303)
    org_id = _buyer_org(principal)
    return render(
        request,
        "orders.html",
        principal,
        orders=licensing.orders_of(session, org_id=org_id),
        money=format_money,
    )


@router.get("/orders/{order_id}", response_class=HTMLResponse)
def order_page(
    order_id: str, request: Request, principal: PrincipalDep, session: SessionDep
) -> Response:
    if not in_person(principal):
        return RedirectResponse("/login", status_code=303)
    order = licensing.get_order(session, order_id, _buyer_org(principal))
    licence = session.scalar(select(Licence).where(Licence.order_id == order.id))
    return render(
        request,
        "order.html",
        principal,
        order=order,
        licence=licence,
        payment=method(order.payment_method).instructions(
            request.app.state.settings,
            invoice_number=order.invoice_number,
            total_minor=order.total_minor,
            currency=order.currency,
        ),
        money=format_money,
    )


@router.get("/licences", response_class=HTMLResponse)
def licences_page(request: Request, principal: PrincipalDep, session: SessionDep) -> Response:
    if not in_person(principal):
        return RedirectResponse("/login", status_code=303)
    org_id = _buyer_org(principal)
    licences = licensing.licences_of(session, org_id)
    names = {d.id: d.name for d in datasets.list_datasets(session, org_id, limit=1000)}
    return render(
        request,
        "licences.html",
        principal,
        licences=licences,
        names=names,
        money=format_money,
    )


def _licence_page(
    request: Request,
    principal: Principal,
    session: SessionDep,
    licence_id: str,
    *,
    status_code: int = 200,
    error: DomainError | None = None,
) -> Response:
    org_id = _buyer_org(principal)
    licence = licensing.get_licence(session, licence_id, org_id)
    dataset = datasets.get_dataset(session, licence.dataset_id)
    version, _ = datasets.get_version(session, licence.version_id)
    exports = delivery.exports_of(session, licence.id)
    export = exports[0] if exports else None
    status = delivery.export_status(session, export) if export else None
    links: list[delivery.SignedFile] = []
    if export is not None and status is not None and status.state.value == "ready":
        files = delivery.export_files(session, export)
        links = delivery.signed_links(request.app.state.settings, export, files, now=utcnow())
    may_download = principal.has_scope(BuyerAction.DOWNLOADS_READ.value)
    return render(
        request,
        "licence.html",
        principal,
        status_code=status_code,
        error=error,
        licence=licence,
        dataset=dataset,
        dsv=version,
        export=export,
        status=status,
        links=links,
        download_prefix=DOWNLOAD_PREFIX,
        may_download=may_download and principal.kind == UserKind.BUYER,
        purpose=purposes.PURPOSES.get(licence.purpose),
        money=format_money,
    )


@router.get("/licences/{licence_id}", response_class=HTMLResponse)
def licence_page(
    licence_id: str, request: Request, principal: PrincipalDep, session: SessionDep
) -> Response:
    if not in_person(principal):
        return RedirectResponse("/login", status_code=303)
    return _licence_page(request, principal, session, licence_id)


@router.post("/licences/{licence_id}/export", response_class=HTMLResponse)
def licence_export(
    licence_id: str, request: Request, principal: PrincipalDep, session: SessionDep
) -> Response:
    """Ask for the licence's export (built in the background; asking again is harmless)."""
    if not in_person(principal):
        return RedirectResponse("/login", status_code=303)
    org_id = authorize_buyer(principal, BuyerAction.DOWNLOADS_READ)
    try:
        with session.begin_nested():
            delivery.start_export(
                session,
                request.app.state.jobs.dispatch,
                licence_id=licence_id,
                org_id=org_id,
                actor=principal.ref,
            )
    except DomainError as error:
        return _licence_page(
            request, principal, session, licence_id, status_code=error.status, error=error
        )
    return RedirectResponse(f"/licences/{licence_id}", status_code=303)
