"""The processing job: from an accepted upload to a redacted version awaiting review.

``ingest.process_asset`` decrypts the original to a private scratch file, scores its
quality, fingerprints it for platform-wide duplicate detection, redacts it (text PII,
chat counterparties, image metadata and faces, the other side of a call, faces in every
video frame), stores the redacted version encrypted beside the original and moves the
asset to ``awaiting_review``: nothing is listed until its owner has seen what will be
shared and approved it.

The handler is idempotent. It runs in the job's transaction: a crash leaves the asset in
``processing`` with nothing half-stored, and the job runs again. Input that turns out to
be unusable (a :class:`~fairtrain.errors.DomainError` from a decoder or redactor) rejects
the asset with that error's code and sentence and deletes its blobs. When only the
contributor can say which part is theirs (the sender name in a chat, the channel of a
call), the asset waits in ``awaiting_review`` with code ``identity_needed`` until
:func:`identify` is called, which runs processing again.

``ingest.redact_asset`` redacts a processed asset again when a counterparty's consent
changes (see :mod:`fairtrain.consent.counterparty`): only the redaction step, from the
original, with the consenting parts left in; the asset keeps its state.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from fairtrain.audit.service import append_event
from fairtrain.errors import Conflict, InvalidInput
from fairtrain.ingest.models import Asset, AssetState
from fairtrain.ingest.service import PROCESS_JOB, REDACT_JOB, set_state
from fairtrain.jobs.registry import job_handler
from fairtrain.jobs.service import Dispatcher, enqueue_job
from fairtrain.privacy.edits import NO_FACE, RedactionEdits
from fairtrain.runtime import Runtime

__all__ = ["edit_redaction", "identify", "process_asset", "redact_asset"]


@job_handler(PROCESS_JOB)
def process_asset(session: Session, payload: dict[str, Any], runtime: Runtime) -> None:
    # The models and decoders load on the first job, not when the web app starts.
    from fairtrain.ingest import pipeline

    pipeline.run(session, payload, runtime)


@job_handler(REDACT_JOB)
def redact_asset(session: Session, payload: dict[str, Any], runtime: Runtime) -> None:
    from fairtrain.ingest import pipeline

    pipeline.redact_again(session, payload, runtime)


def identify(
    session: Session,
    asset: Asset,
    dispatch: Dispatcher,
    *,
    actor: str,
    chat_sender: str | None = None,
    audio_channel: int | None = None,
) -> Asset:
    """The contributor says which part is theirs; processing runs again with it."""
    if AssetState(asset.state) != AssetState.AWAITING_REVIEW:
        raise Conflict(
            "Only an asset waiting for review can be told which part is yours.",
            code="asset_not_reviewable",
        )
    if (chat_sender is None) == (audio_channel is None):
        raise InvalidInput(
            "Give exactly one of chat_sender or audio_channel.", code="invalid_identity"
        )
    if chat_sender is not None and asset.modality != "chat":
        raise InvalidInput("Only a chat has senders to choose from.", code="invalid_identity")
    if audio_channel is not None and asset.modality != "audio":
        raise InvalidInput("Only a recording has channels to choose from.", code="invalid_identity")
    channels = int((asset.media_info or {}).get("channels") or 2)
    if audio_channel is not None and not 0 <= audio_channel < channels:
        raise InvalidInput(
            f"The recording has {channels} channels; choose 0 to {channels - 1}.",
            code="invalid_identity",
        )
    info = dict(asset.media_info or {})
    info["identity"] = (
        {"chat_sender": chat_sender}
        if chat_sender is not None
        else {"audio_channel": audio_channel}
    )
    asset.media_info = info
    set_state(session, asset, AssetState.PROCESSING, actor=actor)
    append_event(
        session,
        actor=actor,
        action="asset.identity_chosen",
        subject=f"asset:{asset.id}",
        payload={"kind": "chat_sender" if chat_sender is not None else "audio_channel"},
    )
    enqueue_job(
        session,
        dispatch,
        kind=PROCESS_JOB,
        subject=f"asset:{asset.id}",
        payload={"asset_id": asset.id},
        owner=f"user:{asset.owner_id}",
        dedupe_key=asset.id,
    )
    return asset


# Which edits make sense for which kind of asset.
_EDITS_BY_MODALITY = {
    "text": {"keep_spans", "redact_spans"},
    "image": {"own_face", "blur_boxes"},
    "audio": {"own_speaker"},
    "video": {"own_speaker"},
}


def _check_edits(asset: Asset, edits: RedactionEdits) -> None:
    allowed = _EDITS_BY_MODALITY.get(str(asset.modality), set())
    given = {k for k, v in edits.as_dict().items() if v not in (None, [])}
    if given - allowed:
        raise InvalidInput(
            f"A {asset.modality} asset cannot take {', '.join(sorted(given - allowed))}"
            + (f"; it takes {', '.join(sorted(allowed))}." if allowed else "."),
            code="invalid_edits",
        )
    report = asset.privacy_report or {}
    detected = {
        (int(s[0]), int(s[1])) for s in [*report.get("spans", []), *report.get("left_in", [])]
    }
    for span in edits.keep_spans:
        if span not in detected:
            raise InvalidInput(
                "Only a span the redaction replaced can be left in: give its start and end "
                "as the report lists them.",
                code="unknown_span",
                pointer="/keep_spans",
            )
    length = int(report.get("length") or 0)
    if any(end > length for _, end in edits.redact_spans):
        raise InvalidInput(
            f"A span to redact must lie inside the text ({length} characters).",
            code="invalid_span",
            pointer="/redact_spans",
        )
    width, height = int(report.get("width") or 0), int(report.get("height") or 0)
    if any(x2 > width or y2 > height for _, _, x2, y2 in edits.blur_boxes):
        raise InvalidInput(
            f"An area to blur must lie inside the picture ({width}×{height}).",
            code="invalid_box",
            pointer="/blur_boxes",
        )
    if edits.own_face not in (None, NO_FACE):
        from fairtrain.privacy.media import parse_face_ref, same_face

        box = parse_face_ref(edits.own_face)
        if not any(same_face(face.get("box", ()), box) for face in report.get("faces", [])):
            raise InvalidInput(
                "This is not one of the faces found in the picture.",
                code="unknown_part",
                pointer="/own_face",
            )
    speakers = int(report.get("speakers") or (report.get("audio") or {}).get("speakers") or 0)
    if edits.own_speaker is not None and edits.own_speaker > max(1, speakers):
        raise InvalidInput(
            f"The recording has {max(1, speakers)} speaker(s); choose one of them.",
            code="invalid_speaker",
            pointer="/own_speaker",
        )


def edit_redaction(
    session: Session, asset: Asset, dispatch: Dispatcher, *, actor: str, edits: RedactionEdits
) -> Asset:
    """The contributor's edits of the redaction (which face and voice are theirs, text
    left in or taken out, areas blurred); the asset is redacted again from its original
    with them. Only before approval: a listed version is what buyers were offered."""
    if AssetState(asset.state) != AssetState.AWAITING_REVIEW or asset.redacted_blob_id is None:
        raise Conflict(
            "Only a redacted asset waiting for your review can be edited.",
            code="asset_not_reviewable",
        )
    _check_edits(asset, edits)
    info = dict(asset.media_info or {})
    info["redaction_edits"] = edits.as_dict()
    asset.media_info = info
    append_event(
        session,
        actor=actor,
        action="asset.redaction_edited",
        subject=f"asset:{asset.id}",
        payload={
            "kept_spans": len(edits.keep_spans),
            "added_spans": len(edits.redact_spans),
            "blurred_areas": len(edits.blur_boxes),
            "own_face": edits.own_face is not None,
            "own_speaker": edits.own_speaker is not None,
        },
    )
    enqueue_job(
        session,
        dispatch,
        kind=REDACT_JOB,
        subject=f"asset:{asset.id}",
        payload={"asset_id": asset.id},
        owner=f"user:{asset.owner_id}",
    )
    return asset
