"""`fairtrain upload` against a real server on loopback: progress, resumable, refusals."""

from __future__ import annotations

import io
import secrets
from pathlib import Path

import httpx
import pytest
from PIL import Image
from tests.factories import STRONG_PASSWORD, unique_email
from typer.testing import CliRunner

from fairtrain.cli import app as cli
from fairtrain.client.uploads import UploadClient, UploadFailed, UploadState

runner = CliRunner()


def noisy_png(path: Path, size: tuple[int, int]) -> Path:
    # Random pixels barely compress: a file of a predictable, non-trivial size.
    image = Image.frombytes("RGB", size, secrets.token_bytes(size[0] * size[1] * 3))
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=0)
    path.write_bytes(out.getvalue())
    return path


@pytest.fixture
def contributor(live_server: str) -> tuple[str, str]:
    email = unique_email("cli")
    response = httpx.post(
        f"{live_server}/api/v1/accounts/contributors",
        json={
            "email": email,
            "password": STRONG_PASSWORD,
            "display_name": "Cli Person",
            "date_of_birth": "1990-01-01",
            "adult_attestation": True,
            "jurisdiction": "IE",
        },
    )
    assert response.status_code == 201, response.text
    return email, STRONG_PASSWORD


def test_upload_command_uploads_and_reports_each_file(
    live_server: str, contributor: tuple[str, str], tmp_path: Path
) -> None:
    email, password = contributor
    good = noisy_png(tmp_path / "face.png", (64, 64))
    bad = tmp_path / "notes.jpg"
    bad.write_bytes(b"MZ" + b"\x00" * 300)
    result = runner.invoke(
        cli,
        [
            "upload",
            str(good),
            str(bad),
            "--server",
            live_server,
            "--email",
            email,
            "--state-file",
            str(tmp_path / "state.json"),
            "--json",
        ],
        env={"FAIRTRAIN_PASSWORD": password},
    )
    assert result.exit_code == 1, result.output  # one file was refused
    assert '"modality": "image"' in result.output
    assert "unsupported_type" in result.output


def test_large_upload_resumes_after_an_interruption(
    live_server: str, contributor: tuple[str, str], tmp_path: Path
) -> None:
    email, password = contributor
    file = noisy_png(tmp_path / "big.png", (400, 300))  # ~360 kB
    state = UploadState(tmp_path / "state.json")
    chunk = 64 * 1024

    class Interrupted(Exception):
        pass

    sent = [0]

    def cut_after_two_chunks(n: int) -> None:
        sent[0] += n
        if sent[0] > 2 * chunk:
            raise Interrupted

    with httpx.Client(base_url=live_server) as http:
        first = UploadClient(http, state=state, chunk_size=chunk, resumable_from=chunk)
        first.log_in(email, password)
        with pytest.raises(Interrupted):
            first.upload(file, cut_after_two_chunks)
    assert state.get(file) is not None  # remembered where the upload lives

    resumed_from: list[int] = []
    with httpx.Client(base_url=live_server) as http:
        second = UploadClient(http, state=state, chunk_size=chunk, resumable_from=chunk)
        second.log_in(email, password)
        asset = second.upload(file, resumed_from.append)
    # The second run started from the server's offset, not from zero.
    assert resumed_from[0] >= chunk
    assert asset["size_bytes"] == file.stat().st_size
    assert asset["modality"] == "image"
    assert state.get(file) is None


def test_wrong_password_is_a_clear_refusal(live_server: str, contributor: tuple[str, str]) -> None:
    email, _ = contributor
    with httpx.Client(base_url=live_server) as http:
        client = UploadClient(http, state=UploadState(Path("/nonexistent/state.json")))
        with pytest.raises(UploadFailed) as refused:
            client.log_in(email, "not-the-password-at-all")
    assert refused.value.status == 401
