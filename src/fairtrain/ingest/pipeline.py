"""The heavy half of processing: decoders, detectors and models (imported only by the
process that runs the job, so a web process without in-process jobs never loads them).
See :mod:`fairtrain.ingest.process` for what the job does and guarantees.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from pypdf import PdfReader, PdfWriter
from sqlalchemy import select
from sqlalchemy.orm import Session

from fairtrain.accounts.models import User
from fairtrain.audit.service import append_event
from fairtrain.consent.counterparty import IncludedParts, included_parts
from fairtrain.errors import DomainError
from fairtrain.ids import utcnow
from fairtrain.ingest import fingerprints
from fairtrain.ingest.chats import ChatTranscript, parse_chat
from fairtrain.ingest.models import Asset, AssetState, DuplicateFlag
from fairtrain.ingest.quality import Thresholds, score
from fairtrain.ingest.service import flag_duplicate, set_state
from fairtrain.media import decode_audio
from fairtrain.privacy import media as media_redaction
from fairtrain.privacy.chat import chat_parts, redact_chat
from fairtrain.privacy.edits import ADDED_ENTITY, RedactionEdits
from fairtrain.privacy.text import Span, detect, redact
from fairtrain.runtime import Runtime
from fairtrain.scratch import scratch_path, spooled

__all__ = ["format_chat", "redact_again", "redact_document", "run"]

SYSTEM = "system"
# The redacted version of a file is never larger than this many times the original
# (re-encoding a small lossy file to FLAC or PNG can grow it).
REDACTED_GROWTH = 20
REDACTED_FLOOR = 64 * 1024 * 1024


def _scratch(directory: Path, suffix: str = "") -> AbstractContextManager[Path]:
    return scratch_path(directory, prefix="process-", suffix=suffix)


def _decrypted(
    session: Session, runtime: Runtime, blob_id: str, directory: Path
) -> AbstractContextManager[Path]:
    return spooled(runtime.vault.open_blob(session, blob_id), directory)


# --- content hash (of the decoded media, so a re-wrapped copy is still "the same") ----


def _content_hash(path: Path, modality: str, text: str | None) -> str:
    digest = hashlib.sha256(modality.encode())
    if text is not None:
        digest.update(" ".join(text.split()).encode())
    elif modality == "image":
        with Image.open(path) as image:
            rgb = image.convert("RGB")
            digest.update(f"{rgb.width}x{rgb.height}".encode())
            digest.update(rgb.tobytes())
    elif modality == "audio":
        pcm = (decode_audio(path) * 32767).astype(np.int16)
        digest.update(pcm.tobytes())
    else:  # video and documents: the bytes (decoding a whole video twice is not worth it)
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _flag_once(session: Session, asset: Asset, other: Asset, kind: str, similarity: float) -> None:
    exists = session.scalar(
        select(DuplicateFlag.id).where(
            DuplicateFlag.asset_id == asset.id,
            DuplicateFlag.duplicate_of == other.id,
            DuplicateFlag.kind == kind,
        )
    )
    if exists is None:
        flag_duplicate(session, asset, other, kind=kind, similarity=similarity)


def _deduplicate(session: Session, asset: Asset, path: Path, text: str | None) -> dict[str, Any]:
    assert asset.modality is not None
    asset.content_hash = _content_hash(path, asset.modality, text)
    same = session.scalars(
        select(Asset)
        .where(Asset.content_hash == asset.content_hash, Asset.id != asset.id)
        .limit(fingerprints.CANDIDATE_LIMIT)
    ).all()
    for other in same:
        if other.sha256 != asset.sha256:  # byte-identical copies were flagged at upload
            _flag_once(session, asset, other, "exact", 1.0)
    fingerprint = fingerprints.compute(path, asset.modality, text=text)
    near: list[tuple[Asset, float]] = []
    if fingerprint is not None:
        fingerprints.index(session, asset, fingerprint)
        near = fingerprints.find_similar(session, asset.id, fingerprint)
        for other, similarity in near:
            if other.content_hash != asset.content_hash:
                _flag_once(session, asset, other, fingerprint.kind, similarity)
    return {"exact": len(same), "near": len(near)}


# --- redaction by modality ------------------------------------------------------------


def _chat_sender(transcript: ChatTranscript, asset: Asset, owner: User) -> str:
    chosen = (asset.media_info or {}).get("identity", {}).get("chat_sender")
    senders = sorted({m.sender for m in transcript.messages if not m.is_system})
    if isinstance(chosen, str) and chosen in senders:
        return chosen
    name = owner.display_name.casefold().strip()
    exact = [s for s in senders if s.casefold().strip() == name]
    first = [s for s in senders if s.casefold().split()[:1] == name.split()[:1]]
    if len(exact) == 1:
        return exact[0]
    if not exact and len(first) == 1:
        return first[0]
    raise media_redaction.IdentityNeeded(
        "Say which sender in this chat is you, so only your messages are shared.",
        code="chat_sender_needed",
    )


def format_chat(transcript: ChatTranscript) -> str:
    lines = []
    for message in transcript.messages:
        when = message.sent_at.strftime("%Y-%m-%d %H:%M") if message.sent_at else ""
        prefix = f"[{when}] " if when else ""
        lines.append(f"{prefix}{message.sender}: {message.text}")
    return "\n".join(lines) + "\n"


def _redact_text(text: str, target: Path, edits: RedactionEdits) -> tuple[str, dict[str, Any]]:
    """Detected spans less those the contributor left in, plus those they added."""
    detected = detect(text)
    kept = set(edits.keep_spans)
    spans = [s for s in detected if (s.start, s.end) not in kept]
    spans += [
        Span(start, min(end, len(text)), ADDED_ENTITY, 1.0)
        for start, end in edits.redact_spans
        if start < len(text)
    ]
    result = redact(text, spans)
    target.write_text(result.text, encoding="utf-8")
    counts: dict[str, int] = {}
    for span in result.spans:
        counts[span.entity_type] = counts.get(span.entity_type, 0) + 1
    return "text/plain; charset=utf-8", {
        "kind": "text",
        "entities": counts,
        "placeholders": len(result.placeholders),
        "spans": [[s.start, s.end, s.entity_type] for s in result.spans],
        "length": len(text),
        "unredacted_by_you": len(detected)
        - len([s for s in detected if (s.start, s.end) not in kept]),
        "left_in": [[s.start, s.end, s.entity_type] for s in detected if (s.start, s.end) in kept],
    }


def _redact_chat(
    text: str, asset: Asset, owner: User, target: Path, consenting: Collection[str]
) -> tuple[str, dict[str, Any]]:
    transcript = parse_chat(text)
    sender = _chat_sender(transcript, asset, owner)
    shared = redact_chat(transcript, sender, consenting)
    target.write_text(format_chat(shared), encoding="utf-8")
    others = {m.sender for m in transcript.messages if not m.is_system} - {sender}
    parts = chat_parts(transcript, sender, consenting)
    included = {str(p["ref"]).casefold().strip() for p in parts if p["included"]}
    withheld = sum(
        1
        for m in transcript.messages
        if not m.is_system and m.sender != sender and m.sender.casefold().strip() not in included
    )
    return "text/plain; charset=utf-8", {
        "kind": "chat",
        "contributor_sender": sender,
        "participants": len(others) + 1,
        "messages": len(transcript.messages),
        "withheld_messages": withheld,
        "counterparties": parts,
    }


def redact_document(source: Path, target: Path) -> tuple[str, dict[str, Any]]:
    reader = PdfReader(source)
    removed = sorted(str(k) for k in (reader.metadata or {}))
    writer = PdfWriter()
    for page in reader.pages:
        writer.add_page(page)
    writer.metadata = None
    with target.open("wb") as handle:
        writer.write(handle)
    return "application/pdf", {
        "kind": "document",
        "pages": len(reader.pages),
        "metadata_removed": removed,
        # Said plainly to the contributor: nothing on the pages has been checked.
        "unchecked": "page content (handwriting, pictures) is not scanned for personal data",
    }


def _redact(
    session: Session,
    asset: Asset,
    source: Path,
    target: Path,
    text: str | None,
    included: IncludedParts,
) -> tuple[str, dict[str, Any]]:
    """The redacted version, with the parts ``included`` whose people consented and the
    contributor's own edits (:mod:`fairtrain.privacy.edits`) applied."""
    modality = asset.modality
    edits = RedactionEdits.stored((asset.media_info or {}).get("redaction_edits"))
    if modality == "image":
        media_type, report = media_redaction.redact_image(
            source,
            target,
            keep_faces=included.faces,
            own_face=edits.own_face,
            blur_boxes=edits.blur_boxes,
        )
    elif modality == "video":
        media_type, report = media_redaction.redact_video(
            source,
            target,
            speaker=edits.own_speaker,
            consenting_speakers=included.speakers,
        )
    elif modality == "audio":
        channel = (asset.media_info or {}).get("identity", {}).get("audio_channel")
        media_type, report = media_redaction.redact_audio(
            source,
            target,
            channel=channel if isinstance(channel, int) else None,
            consenting_channels=included.audio_channels,
            speaker=edits.own_speaker,
            consenting_speakers=included.speakers,
        )
    elif modality == "document":
        media_type, report = redact_document(source, target)
    elif modality == "chat":
        assert text is not None
        owner = session.get(User, asset.owner_id)
        assert owner is not None
        media_type, report = _redact_chat(text, asset, owner, target, included.chat_senders)
    else:
        assert text is not None
        media_type, report = _redact_text(text, target, edits)
    version = int((asset.privacy_report or {}).get("redaction_version") or 0) + 1
    return media_type, report | {
        "edits": edits.as_dict(),
        "included_by_consent": included.part_ids,
        "redaction_version": version,
    }


# --- the job --------------------------------------------------------------------------


def _identity_choices(asset: Asset, source: Path, code: str) -> dict[str, Any]:
    if code == "chat_sender_needed":
        transcript = parse_chat(source.read_text("utf-8"))
        senders = sorted({m.sender for m in transcript.messages if not m.is_system})
        return {"chat_sender": senders}
    return {"audio_channel": [0, 1]}


def run(session: Session, payload: dict[str, Any], runtime: Runtime) -> None:
    asset = session.get(Asset, str(payload.get("asset_id")))
    if asset is None or AssetState(asset.state) not in (
        AssetState.UPLOADED,
        AssetState.PROCESSING,
    ):
        return  # already processed, rejected or erased: nothing left to do
    if asset.blob_id is None or asset.modality is None:
        return
    if AssetState(asset.state) == AssetState.UPLOADED:
        set_state(session, asset, AssetState.PROCESSING, actor=SYSTEM)
    scratch = runtime.settings.data_dir / "scratch"
    with (
        _decrypted(session, runtime, asset.blob_id, scratch) as source,
        _scratch(scratch) as target,
    ):
        try:
            with session.begin_nested():
                _process(session, runtime, asset, source, target)
        except media_redaction.IdentityNeeded as exc:
            asset.privacy_report = {
                "identity_needed": _identity_choices(asset, source, exc.code),
                "reason": exc.detail,
            }
            set_state(
                session,
                asset,
                AssetState.AWAITING_REVIEW,
                actor=SYSTEM,
                code=exc.code,
                reason=exc.detail,
            )
        except DomainError as exc:
            _reject(session, runtime, asset, exc)


def _process(session: Session, runtime: Runtime, asset: Asset, source: Path, target: Path) -> None:
    assert asset.modality is not None
    text = source.read_text("utf-8") if asset.modality in ("text", "chat") else None
    asset.quality = score(source, asset.modality, Thresholds.from_settings(runtime.settings))
    duplicates = _deduplicate(session, asset, source, text)
    included = included_parts(session, asset.id)
    media_type, report = _redact(session, asset, source, target, text, included)
    _store_redacted(session, runtime, asset, target, media_type)
    asset.privacy_report = report | {"duplicates": duplicates}
    set_state(session, asset, AssetState.AWAITING_REVIEW, actor=SYSTEM)


def _store_redacted(
    session: Session, runtime: Runtime, asset: Asset, target: Path, media_type: str
) -> None:
    """The new redacted version replaces the previous one (which is deleted)."""
    if asset.redacted_blob_id is not None:  # processed again: identity choice, consent
        runtime.vault.delete_blob(session, asset.redacted_blob_id)
    with target.open("rb") as handle:
        blob = runtime.vault.store_blob(
            session,
            owner=f"user:{asset.owner_id}",
            stream=handle,
            media_type=media_type,
            max_bytes=max(REDACTED_FLOOR, asset.size_bytes * REDACTED_GROWTH),
        )
    asset.redacted_blob_id = blob.id
    asset.redacted_media_type = media_type


# States whose redacted version is redacted again when a counterparty's consent changes;
# an asset still processing picks the consents up itself.
REDACTED_STATES = frozenset({AssetState.AWAITING_REVIEW, AssetState.LISTED})


def redact_again(session: Session, payload: dict[str, Any], runtime: Runtime) -> None:
    """Redact a processed asset again from its original, with the parts whose people
    consent now; the state stays (a listed asset stays listed, with the new version).

    Idempotent: when the privacy report already records exactly these consents, nothing
    is done. The asset row is locked first, so two runs for one asset take turns and the
    second sees what the first stored.
    """
    asset = session.get(
        Asset, str(payload.get("asset_id")), with_for_update=True, populate_existing=True
    )
    if asset is None or AssetState(asset.state) not in REDACTED_STATES:
        return  # erased, withdrawn, rejected, or still processing
    if asset.blob_id is None or asset.redacted_blob_id is None or asset.modality is None:
        return  # waiting for "which part is yours": nothing was redacted yet
    previous = dict(asset.privacy_report or {})
    included = included_parts(session, asset.id)
    edits = RedactionEdits.stored((asset.media_info or {}).get("redaction_edits"))
    if (
        previous.get("included_by_consent", []) == included.part_ids
        and previous.get("edits", RedactionEdits().as_dict()) == edits.as_dict()
    ):
        return
    scratch = runtime.settings.data_dir / "scratch"
    with (
        _decrypted(session, runtime, asset.blob_id, scratch) as source,
        _scratch(scratch) as target,
    ):
        text = source.read_text("utf-8") if asset.modality in ("text", "chat") else None
        media_type, report = _redact(session, asset, source, target, text, included)
        _store_redacted(session, runtime, asset, target, media_type)
    asset.privacy_report = report | {"duplicates": previous.get("duplicates")}
    asset.updated_at = utcnow()
    append_event(
        session,
        actor=SYSTEM,
        action="asset.redacted_again",
        subject=f"asset:{asset.id}",
        payload={
            "version": report["redaction_version"],
            "included_parts": len(included.part_ids),
            "state": str(asset.state),
        },
    )


def _reject(session: Session, runtime: Runtime, asset: Asset, error: DomainError) -> None:
    for blob_id in (asset.blob_id, asset.redacted_blob_id):
        if blob_id is not None:
            runtime.vault.delete_blob(session, blob_id)
    asset.blob_id = asset.redacted_blob_id = None
    set_state(
        session, asset, AssetState.REJECTED, actor=SYSTEM, code=error.code, reason=error.detail
    )
