"""The hostile media corpus: every file is refused with a 4xx and a specific code, and no
refusal leaves a trace (no asset row, no orphan object, no live blob, no scratch file).

Controls sit next to it: files that only look hostile (a lying extension, a traversal or
bidi trick in the filename, emoji joiners in a chat) must still be accepted.

Runs on SQLite with the local vault and on PostgreSQL with the S3 vault (moto's server).
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session
from tests.factories import Actor, sign_up_contributor
from tests.functional.test_uploads import TUS, asset_count, upload
from tests.functional.traces import assert_no_trace
from tests.hostile_corpus import CORPUS, HostileFile, valid_sample

# Refused again through tus: the resumable path must clean up its segments just as well.
TUS_SUBSET = {
    "truncated-mp4-50pct",
    "png+zip",
    "png-compressed-121-megapixels",
    "zip-bomb",
    "wav-adpcm",
    "html-page",
    "utf16-le-bom",
    "pdf-encrypted",
    "ogg+zip",
    "mp4+zip",
    "truncated-opus-50pct",
}


@pytest.fixture
def ada(make_client) -> Actor:  # type: ignore[no-untyped-def]
    return sign_up_contributor(make_client(), name="Ada Hostile")


@pytest.fixture(scope="session")
def samples(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where valid media are generated once per session, to be broken by the corpus."""
    return tmp_path_factory.mktemp("hostile")


def assert_refusal(response: Any, entry: HostileFile) -> None:
    assert response.status_code == entry.status, (entry.name, response.text)
    body = response.json()
    assert body["code"] == entry.code, (entry.name, body)
    detail = body["detail"]
    # A sentence a person can act on, without the server's paths or a stack trace.
    assert detail[0].isupper() and detail.rstrip().endswith((".", "?", ")")), detail
    assert "/tmp" not in detail and "upload-" not in detail and "Traceback" not in detail


def tus_upload(actor: Actor, data: bytes, name: str, pieces: int = 2) -> Any:
    """Create a tus upload and PATCH ``data`` in ``pieces``; the last response."""
    metadata = base64.b64encode(name.encode()).decode()
    created = actor.client.post(
        "/api/v1/uploads/tus",
        headers={
            **TUS,
            **actor.headers(),
            "Upload-Length": str(len(data)),
            "Upload-Metadata": f"filename {metadata}",
        },
    )
    if created.status_code != 201:
        return created
    location = created.headers["location"]
    size = max(1, -(-len(data) // pieces))
    response = created
    for offset in range(0, len(data), size):
        response = actor.client.patch(
            location,
            content=data[offset : offset + size],
            headers={
                **TUS,
                **actor.headers(),
                "Upload-Offset": str(offset),
                "Content-Type": "application/offset+octet-stream",
            },
        )
        if response.status_code != 204:
            break
    return response


@pytest.mark.parametrize("entry", CORPUS, ids=str)
def test_hostile_file_is_refused_without_trace(
    ada: Actor,
    app: Any,
    db: Session,
    samples: Path,
    entry: HostileFile,
) -> None:
    data = entry.build(samples)
    before = asset_count(db)
    assert_refusal(upload(ada, data, name=entry.filename), entry)
    assert asset_count(db) == before
    assert_no_trace(app, db)


@pytest.mark.parametrize("entry", [e for e in CORPUS if e.name in TUS_SUBSET], ids=str)
def test_hostile_file_is_refused_through_tus_without_trace(
    ada: Actor,
    app: Any,
    db: Session,
    samples: Path,
    entry: HostileFile,
) -> None:
    data = entry.build(samples)
    before = asset_count(db)
    assert_refusal(tus_upload(ada, data, entry.filename), entry)
    assert asset_count(db) == before
    assert_no_trace(app, db)


def test_tus_refuses_an_empty_upload_at_creation(ada: Actor, app: Any, db: Session) -> None:
    response = tus_upload(ada, b"", "empty.wav")
    assert response.status_code == 422 and response.json()["code"] == "empty_file"
    assert_no_trace(app, db)


def test_the_whole_corpus_is_refused(ada: Actor, app: Any, db: Session, samples: Path) -> None:
    """The must-show: 100% of the corpus refused with a 4xx and its code, 0 orphans."""
    assert len(CORPUS) >= 30
    assert len({entry.name for entry in CORPUS}) == len(CORPUS)
    before = asset_count(db)
    expected = {entry.name: (entry.status, entry.code) for entry in CORPUS}
    answered = {}
    for entry in CORPUS:
        response = upload(ada, entry.build(samples), name=entry.filename)
        answered[entry.name] = (response.status_code, response.json().get("code"))
    refused = [name for name, (status, _) in answered.items() if 400 <= status < 500]
    assert len(refused) == len(CORPUS), set(answered) - set(refused)
    assert answered == expected
    assert asset_count(db) == before
    assert_no_trace(app, db)


# -- controls: valid files that only look hostile ----------------------------------------


@pytest.mark.parametrize(
    ("kind", "name", "media_type"),
    [
        ("png", "setup.exe", "image/png"),
        ("jpeg", "invoice.pdf.exe", "image/jpeg"),
        ("wav", "payload.sh", "audio/wav"),
        ("whatsapp-android", "chat.html", "text/plain"),
    ],
)
def test_a_valid_file_with_a_lying_extension_is_accepted(
    ada: Actor,
    app: Any,
    db: Session,
    samples: Path,
    kind: str,
    name: str,
    media_type: str,
) -> None:
    response = upload(ada, valid_sample(kind, samples), name=name)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["media_type"] == media_type  # the bytes decide, not the name
    assert body["display_name"] == name
    assert_no_trace(app, db)


TRICKY_NAMES = [
    ("../../etc/passwd", "passwd"),
    ("..\\..\\windows\\system32\\evil.png", "evil.png"),
    ("/var/lib/fairtrain/vault/key.png", "key.png"),
    ("holiday\u202egnp.exe", "holidaygnp.exe"),  # RIGHT-TO-LEFT OVERRIDE: shows as exe.png
    ("photo\u2066\u2069\u200b.png", "photo.png"),
    ("a\x00b\x1b[31m.png", "ab[31m.png"),
    ("line\r\nSet-Cookie: x=1.png", "lineSet-Cookie: x=1.png"),
    ("....", "upload"),
    ("..", "upload"),
    ("x" * 250 + ".png", "x" * 200),
]


@pytest.mark.parametrize(("name", "shown"), TRICKY_NAMES, ids=range(len(TRICKY_NAMES)))
def test_a_hostile_filename_is_accepted_with_a_safe_display_name(
    ada: Actor,
    app: Any,
    db: Session,
    samples: Path,
    request: pytest.FixtureRequest,
    name: str,
    shown: str,
) -> None:
    data = valid_sample("png", samples)
    response = upload(ada, data, name=name)
    assert response.status_code == 201, response.text
    assert response.json()["display_name"] == shown
    # The same name as tus metadata, which is stored before the upload completes.
    finished = tus_upload(ada, data, name)
    assert finished.status_code == 204, finished.text
    asset = ada.client.get(f"/api/v1/assets/{finished.headers['fairtrain-asset']}").json()
    assert asset["display_name"] == shown
    assert_no_trace(app, db)


def test_a_very_long_tus_filename_is_shortened(
    ada: Actor, app: Any, db: Session, samples: Path, request: pytest.FixtureRequest
) -> None:
    """tus metadata has no query-string length limit; the display name still has one."""
    finished = tus_upload(ada, valid_sample("png", samples), "\u202e" + "long " * 400 + ".png")
    assert finished.status_code == 204, finished.text
    asset = ada.client.get(f"/api/v1/assets/{finished.headers['fairtrain-asset']}").json()
    shown = asset["display_name"]
    assert 190 <= len(shown) <= 200 and shown.startswith("long long") and "\u202e" not in shown
    assert_no_trace(app, db)


UNICODE_CHATS = {
    # Emoji sequences are joined with ZERO WIDTH JOINER; a family is three joiners.
    "emoji-joiners": "12/31/20, 9:15 PM - Ada Okafor: \U0001f468\u200d\U0001f469\u200d"
    "\U0001f467\u200d\U0001f466 \U0001f3f3\ufe0f\u200d\U0001f308\n" * 40,
    # WhatsApp wraps numbers in LEFT-TO-RIGHT EMBEDDING … POP DIRECTIONAL FORMATTING.
    "bidi-embedding": "12/31/20, 9:15 PM - Ada Okafor: call \u202a+44 7700 900123\u202c\n" * 40,
    # Persian writes ZERO WIDTH NON-JOINER inside words.
    "persian-zwnj": "12/31/20, 9:15 PM - Ada Okafor: \u0645\u06cc\u200c\u062e\u0648\u0627\u0645\n"
    * 40,
    # Newer iOS exports put NARROW NO-BREAK SPACE before PM; French puts NO-BREAK SPACE
    # before "?" and "!". Neither is a control character.
    "ios-no-break-spaces": "[31/12/2020, 9:15:07\u202fPM] Ada Okafor: on est o\u00f9\u00a0?\n"
    "[31/12/2020, 9:16:07\u202fPM] Ben Stone: \u00e0 la gare\u00a0!\n" * 30,
    # A bidi override in a chat is neutralised by the chat parser, not a reason to refuse.
    "bidi-override": "12/31/20, 9:15 PM - Ada Okafor: \u202eenohp ym si 321009\n" * 5,
}


@pytest.mark.parametrize("name", sorted(UNICODE_CHATS))
def test_a_chat_with_invisible_unicode_is_accepted(
    ada: Actor,
    app: Any,
    db: Session,
    name: str,
) -> None:
    response = upload(ada, UNICODE_CHATS[name].encode(), name="chat.txt")
    assert response.status_code == 201, response.text
    assert response.json()["modality"] == "chat"
    assert_no_trace(app, db)
