"""Which licence did these leaked files come from? Tracing against the platform's records.

For each file, the candidates are the (licence, asset) pairs that could have produced it,
found in this order:

1. **exact copy**: its SHA-256 is that of an item as delivered (``delivered_items``);
2. **fingerprint**: the asset is recognised by the platform's near-duplicate index
   (perceptual hash for pictures and video frames, Chromaprint for recordings, MinHash for
   text; ``ingest.fingerprints``), and the candidates are the licences it was delivered
   under;
3. **every delivery**: otherwise every item delivered with the mark this kind of file
   carries, read in batches.

Each candidate's key is derived as the build derived it (licence and asset), the
detectors of ``delivery.trace`` score the file against every candidate, and the scores are
gathered per licence: a licence's p-value is its best candidate's times the number of its
candidates (Bonferroni within the licence; ``decide`` then corrects across licences), so
searching many assets never makes a false attribution likelier than the stated bound.
``verdict`` combines the files as ``fairtrain trace --candidates`` does.

A leaked shard (a WebDataset tar, a Parquet file) is traced sample by sample
(``delivery.leaked``), and the order its samples come in is one more piece of evidence:
each licence's delivery has its own keyed order (``fingerprint.licence_order``), so a
leak that keeps it names the licence even when none of its samples carries a mark (PDFs,
or marks scrubbed away); see ``_leak_order``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fairtrain.accounts.models import Organisation
from fairtrain.config import Settings
from fairtrain.delivery.fingerprint import (
    AUDIO_METHOD,
    TEXT_METHOD,
    licence_order,
    subset_evidence,
)
from fairtrain.delivery.keys import licence_key, watermark_key, watermark_secret
from fairtrain.delivery.leaked import leaked_items
from fairtrain.delivery.models import DeliveredItem
from fairtrain.delivery.trace import (
    TraceResult,
    Verdict,
    classify,
    file_sha256,
    trace_file,
    verdict,
)
from fairtrain.delivery.watermark import (
    IMAGE_METHOD,
    VIDEO_METHOD,
    CandidateScore,
    Detection,
    decide,
)
from fairtrain.ingest import fingerprints
from fairtrain.licensing.models import Licence

__all__ = ["FileTrace", "LeakTrace", "trace_leak"]

# The mark a delivered item of each kind of file carries.
_METHODS = {
    "image": IMAGE_METHOD,
    "video": VIDEO_METHOD,
    "audio": AUDIO_METHOD,
    "text": TEXT_METHOD,
}
CANDIDATE_BATCH = 64
# Fewer placed samples than this say nothing useful about order (3! = 6 orders).
MIN_ORDER_SAMPLES = 3
_SEPARATOR = "|"


@dataclass(frozen=True, slots=True)
class FileTrace:
    """One file: the detector's result, per licence, and how its candidates were found."""

    result: TraceResult
    matched_by: str  # exact_copy | fingerprint | every_delivery | none
    assets: tuple[str, ...]  # the assets it was matched to (empty: not matched)
    candidates: int  # (licence, asset) pairs scored
    identical_to: tuple[str, ...] = ()  # licences whose delivered copy has these bytes


@dataclass(frozen=True, slots=True)
class LeakTrace:
    files: list[FileTrace]
    verdict: Verdict
    organisations: dict[str, str] = field(default_factory=dict)  # licence -> licensee
    # Whether the samples sit in one licence's delivered order (None: too few placed).
    order: Detection | None = None

    def as_dict(self) -> dict[str, Any]:
        def organisation(licence_id: str | None) -> str | None:
            return self.organisations.get(licence_id) if licence_id else None

        return {
            "files": [
                {
                    **f.result.as_dict(),
                    "organisation": organisation(f.result.licence_id),
                    "matched_by": f.matched_by,
                    "assets": list(f.assets),
                    "candidates": f.candidates,
                    "identical_to": list(f.identical_to),
                }
                for f in self.files
            ],
            "order": self.order.as_dict() if self.order else None,
            "verdict": {
                **self.verdict.as_dict(),
                "organisation": organisation(self.verdict.licence_id),
            },
        }


def _pairs_for_assets(session: Session, assets: Sequence[str]) -> list[tuple[str, str]]:
    pairs: set[tuple[str, str]] = set()
    for start in range(0, len(assets), 500):
        rows = session.execute(
            select(DeliveredItem.licence_id, DeliveredItem.asset_id).where(
                DeliveredItem.asset_id.in_(assets[start : start + 500])
            )
        )
        pairs.update((licence, asset) for licence, asset in rows)
    return sorted(pairs)


def _recognised_assets(session: Session, path: Path, kind: str) -> list[str]:
    """Assets the near-duplicate index recognises in the file (their originals)."""
    text = None
    if kind == "text":
        try:
            text = path.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError):
            return []
    try:
        fingerprint = fingerprints.compute(path, kind, text=text)
    except (OSError, ValueError):
        return []
    if fingerprint is None:
        return []
    return [asset.id for asset, _ in fingerprints.find_similar(session, "", fingerprint)]


def _every_delivery(session: Session, method: str, batch: int) -> Iterator[list[tuple[str, str]]]:
    rows = session.execute(
        select(DeliveredItem.licence_id, DeliveredItem.asset_id)
        .where(DeliveredItem.method == method)
        .distinct()
        .order_by(DeliveredItem.licence_id, DeliveredItem.asset_id)
        .execution_options(yield_per=batch)
    )
    pending: list[tuple[str, str]] = []
    for licence, asset in rows:
        pending.append((licence, asset))
        if len(pending) >= batch:
            yield pending
            pending = []
    if pending:
        yield pending


def _score(
    path: Path,
    secret: bytes,
    batches: Iterator[list[tuple[str, str]]],
) -> tuple[TraceResult | None, dict[str, list[CandidateScore]], int]:
    """Every candidate's score, by licence; or the detector's refusal."""
    by_licence: dict[str, list[CandidateScore]] = defaultdict(list)
    scored = 0
    for batch in batches:
        keys = {
            f"{licence}{_SEPARATOR}{asset}": watermark_key(secret, licence, asset)
            for licence, asset in batch
        }
        result = trace_file(path, keys)
        if result.detection is None:
            return result, {}, scored
        scored += len(batch)
        for score in result.detection.scores:
            licence = score.licence_id.split(_SEPARATOR, 1)[0]
            by_licence[licence].append(score)
    return None, by_licence, scored


def _per_licence(
    path: Path, kind: Any, method: str, by_licence: dict[str, list[CandidateScore]]
) -> TraceResult:
    collapsed = []
    for licence, scores in by_licence.items():
        best = min(scores, key=lambda s: (s.p_value, -s.z))
        collapsed.append(CandidateScore(licence, best.z, min(1.0, best.p_value * len(scores))))
    return TraceResult(str(path), kind, decide(method, collapsed))


def _trace_one(
    session: Session, secret: bytes, path: Path, digest: str | None, batch: int
) -> FileTrace:
    exact = (
        list(
            session.execute(
                select(DeliveredItem.licence_id, DeliveredItem.asset_id, DeliveredItem.method)
                .where(DeliveredItem.sha256 == digest)
                .distinct()
            )
        )
        if digest
        else []
    )
    identical = tuple(sorted({licence for licence, _, _ in exact}))
    try:
        kind = classify(path)
    except OSError as error:
        return FileTrace(
            TraceResult(str(path), "unsupported", error=f"cannot read: {error.strerror}"),
            "none",
            (),
            0,
            identical,
        )
    method = _METHODS.get(kind)
    if method is None:
        note = "not a picture, video, recording or text"
        if identical:
            note += "; byte-identical to a delivered copy (see identical_to)"
        assets = tuple(sorted({asset for _, asset, _ in exact}))
        matched = "exact_copy" if assets else "none"
        return FileTrace(TraceResult(str(path), kind, error=note), matched, assets, 0, identical)
    matched_by = "exact_copy"
    pairs = sorted({(licence, asset) for licence, asset, _ in exact})
    if not pairs:
        matched_by = "fingerprint"
        pairs = _pairs_for_assets(session, _recognised_assets(session, path, kind))
    if pairs:
        chunks = [pairs[i : i + batch] for i in range(0, len(pairs), batch)]
        batches: Iterator[list[tuple[str, str]]] = iter(chunks)
    else:
        matched_by = "every_delivery"
        batches = _every_delivery(session, method, batch)
    assets = tuple(sorted({asset for _, asset in pairs}))
    refused, by_licence, scored = _score(path, secret, batches)
    if refused is not None:
        return FileTrace(refused, matched_by, assets, scored, identical)
    if not by_licence:
        result = TraceResult(str(path), kind, error="no licence was delivered anything like it")
        return FileTrace(result, "none", (), 0, identical)
    result = _per_licence(path, kind, method, by_licence)
    return FileTrace(result, matched_by, assets, scored, identical)


def _leak_order(
    session: Session, secret: bytes, samples: Sequence[tuple[str | None, FileTrace]]
) -> Detection | None:
    """Does the leak keep one licence's sample order? (``fingerprint.subset_evidence``)

    Each sample is placed by the key its shard names it by when that is a delivered
    asset, else by the one asset its bytes matched; the leak's order is then tested
    against the order each licence that received at least two of them was delivered
    them in (``licence_order`` of the licence's own key, as the build wrote it).
    """
    keys = sorted({key for key, _ in samples if key})
    known = {asset for _, asset in _pairs_for_assets(session, keys)} if keys else set()
    order: list[str] = []
    for key, traced in samples:
        asset = key if key in known else (traced.assets[0] if len(traced.assets) == 1 else None)
        if asset is not None and asset not in order:
            order.append(asset)
    if len(order) < MIN_ORDER_SAMPLES:
        return None
    delivered: dict[str, list[str]] = defaultdict(list)
    for licence, asset in _pairs_for_assets(session, order):
        delivered[licence].append(asset)
    orders = {
        licence: licence_order(assets, key=licence_key(secret, licence))
        for licence, assets in delivered.items()
        if len(assets) >= 2
    }
    return subset_evidence(order, orders) if orders else None


def trace_leak(
    session: Session,
    settings: Settings,
    paths: Sequence[Path],
    *,
    batch: int = CANDIDATE_BATCH,
    progress: Callable[[Path], None] | None = None,
) -> LeakTrace:
    """Trace each sample of the leak against the licences that could have received it.

    ``paths`` may be loose files or whole shards (WebDataset tars, Parquet files), which
    are traced sample by sample, in order (``delivery.leaked``); byte-identical copies are
    counted once (``duplicate_of``); the order the samples come in is evidence too."""
    secret = watermark_secret(settings)
    seen: dict[str, str] = {}
    traced: list[FileTrace] = []
    placed: list[tuple[str | None, FileTrace]] = []
    for item in leaked_items(list(map(Path, paths))):
        if item.path is None:
            result = TraceResult(item.label, "unsupported", error=item.error)
            traced.append(FileTrace(result, "none", (), 0))
            continue
        digest = file_sha256(item.path)
        if digest is not None and digest in seen:
            result = TraceResult(item.label, classify(item.path), duplicate_of=seen[digest])
            traced.append(FileTrace(result, "none", (), 0))
        else:
            if digest is not None:
                seen[digest] = item.label
            one = _trace_one(session, secret, item.path, digest, batch)
            one = replace(one, result=replace(one.result, path=item.label))
            traced.append(one)
            placed.append((item.key, one))
        if progress is not None:
            progress(item.path)
    order = _leak_order(session, secret, placed)
    overall = verdict([f.result for f in traced], extra=[order] if order else [])
    named = {f.result.licence_id for f in traced if f.result.licence_id}
    named |= set(overall.combined) | ({overall.licence_id} if overall.licence_id else set())
    rows = session.execute(
        select(Licence.id, Organisation.name)
        .join(Organisation, Organisation.id == Licence.org_id)
        .where(Licence.id.in_(sorted(named)))
    )
    organisations = {str(licence): str(name) for licence, name in rows}
    return LeakTrace(traced, overall, organisations, order)
