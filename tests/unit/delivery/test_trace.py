"""Tracing a set of leaked files, and the ``trace`` command that prints it."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import soundfile
import typer
from tests.media_factory import speech_wav
from tests.unit.delivery.test_fingerprint import LETTER, SPEECH
from tests.unit.delivery.watermark_media import (
    encoded,
    halve_then_jpeg75,
    licence_keys,
    photo,
    write_video,
)
from typer.testing import CliRunner

from fairtrain.delivery.fingerprint import mark_audio, mark_text
from fairtrain.delivery.trace import classify, trace_files, verdict
from fairtrain.delivery.trace_cli import app, load_candidates
from fairtrain.delivery.watermark import CandidateScore, Detection, embed_image, embed_video
from fairtrain.errors import InvalidInput

KEYS = licence_keys(3, salt=5)
A, B, C = KEYS


@pytest.fixture(scope="module")
def leak(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A leak of licence A's delivery: a picture, a recording, a text, a video, a copy of
    the picture, an unmarked picture and a file that is none of these."""
    folder = tmp_path_factory.mktemp("leak")
    files: dict[str, Path] = {}
    marked = embed_image(encoded(photo("astronaut.png")), key=KEYS[A], media_type="image/jpeg")
    files["picture"] = folder / "p.jpg"
    files["picture"].write_bytes(halve_then_jpeg75(marked))
    files["copy"] = folder / "copy-of-p.bin"
    files["copy"].write_bytes(files["picture"].read_bytes())
    files["unmarked"] = folder / "u.png"
    files["unmarked"].write_bytes(encoded(photo("coffee.png"), "PNG"))
    samples, rate = soundfile.read(str(speech_wav(folder, SPEECH)), dtype="float32")
    files["recording"] = folder / "r.flac"
    soundfile.write(str(files["recording"]), mark_audio(samples, rate, key=KEYS[A]), rate)
    files["text"] = folder / "t.txt"
    files["text"].write_text(mark_text(LETTER, key=KEYS[A]), encoding="utf-8")
    files["video"] = folder / "v.mp4"
    embed_video(
        write_video(folder / "source.mp4", frames=20, size=(480, 360)), files["video"], key=KEYS[A]
    )
    files["binary"] = folder / "b.dat"
    files["binary"].write_bytes(bytes(range(256)) * 8)
    return files


def test_each_kind_is_recognised_from_its_bytes(leak: dict[str, Path]) -> None:
    assert classify(leak["picture"]) == "image"
    assert classify(leak["copy"]) == "image"  # the name says .bin; the bytes say JPEG
    assert classify(leak["recording"]) == "audio"
    assert classify(leak["text"]) == "text"
    assert classify(leak["video"]) == "video"
    assert classify(leak["binary"]) == "unsupported"


def test_trace_names_the_licence_per_file_and_overall(leak: dict[str, Path]) -> None:
    names = ["picture", "copy", "unmarked", "recording", "text", "video", "binary"]
    results = trace_files([leak[n] for n in names], KEYS)
    by_name = dict(zip(names, results, strict=True))
    for name in ("picture", "recording", "text", "video"):
        assert by_name[name].licence_id == A, (name, by_name[name].as_dict())
        assert by_name[name].confidence > 0.999999
    assert by_name["picture"].method == "image_spread_spectrum"
    assert by_name["copy"].duplicate_of == str(leak["picture"])
    assert by_name["copy"].detection is None
    assert by_name["unmarked"].licence_id is None
    assert by_name["binary"].error is not None
    overall = verdict(results)
    assert overall.licence_id == A
    assert overall.files == 7
    assert overall.files_with_evidence == 5
    assert overall.attributed == {A: 4}
    assert not overall.conflicting
    assert overall.as_dict()["combined_p_values"][A] < 1e-30


def test_weak_files_add_up_in_the_verdict() -> None:
    def weak(licence_p: float) -> Detection:
        scores = (CandidateScore(A, 4.0, licence_p), CandidateScore(B, 0.5, 0.6))
        return Detection("m", None, 4.0, licence_p * 2, scores)

    from fairtrain.delivery.trace import TraceResult

    results = [TraceResult(f"f{i}", "audio", weak(1e-3)) for i in range(6)]
    assert all(r.licence_id is None for r in results)
    overall = verdict(results)
    assert overall.licence_id == A
    assert overall.p_value < 1e-6


def test_files_pointing_at_different_licences_are_flagged(tmp_path: Path) -> None:
    picture = encoded(photo("rocket.jpg"))
    for licence in (A, B):
        (tmp_path / f"{licence}.jpg").write_bytes(
            embed_image(picture, key=KEYS[licence], media_type="image/jpeg")
        )
    overall = verdict(trace_files(sorted(tmp_path.iterdir()), KEYS))
    assert overall.conflicting
    assert set(overall.attributed) == {A, B}


def test_trace_refuses_an_empty_candidate_list(leak: dict[str, Path]) -> None:
    with pytest.raises(InvalidInput) as refused:
        trace_files([leak["picture"]], {})
    assert refused.value.code == "no_candidates"


def test_a_missing_file_is_reported_not_raised(tmp_path: Path) -> None:
    (result,) = trace_files([tmp_path / "gone.jpg"], KEYS)
    assert result.kind == "unsupported"
    assert result.error is not None
    assert verdict([result]).licence_id is None


# --- the command ----------------------------------------------------------------------


def _fairtrain() -> typer.Typer:
    """A root command with the trace app mounted as the integrator mounts it."""
    root = typer.Typer()

    @root.command("version")
    def version() -> None:
        """A second command, so the root is a group as `fairtrain` is."""

    root.add_typer(app)
    return root


def _candidates_file(folder: Path, keys: dict[str, bytes]) -> Path:
    path = folder / "candidates.json"
    path.write_text(json.dumps({k: base64.b64encode(v).decode() for k, v in keys.items()}))
    return path


def test_trace_command_json(leak: dict[str, Path], tmp_path: Path) -> None:
    candidates = _candidates_file(tmp_path, KEYS)
    result = CliRunner().invoke(
        _fairtrain(),
        [
            "trace",
            str(leak["picture"]),
            str(leak["text"]),
            "--candidates",
            str(candidates),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [f["licence_id"] for f in report["files"]] == [A, A]
    assert report["verdict"]["licence_id"] == A
    assert report["files"][0]["detection"]["scores"][0]["licence_id"] == A


def test_trace_command_table_and_exit_status_without_attribution(
    leak: dict[str, Path], tmp_path: Path
) -> None:
    candidates = _candidates_file(tmp_path, {B: KEYS[B], C: KEYS[C]})
    result = CliRunner().invoke(
        _fairtrain(),
        ["trace", str(leak["picture"]), str(leak["unmarked"]), "--candidates", str(candidates)],
    )
    assert result.exit_code == 1, result.output
    assert "no licence can be named" in result.stdout


def test_trace_command_refuses_bad_candidate_files(leak: dict[str, Path], tmp_path: Path) -> None:
    cases = {
        "not-json": "{",
        "list": "[1, 2]",
        "empty": "{}",
        "number": '{"lic": 5}',
        "bad-base64": '{"lic": "***"}',
        "short": json.dumps({"lic": base64.b64encode(b"short").decode()}),
    }
    for name, content in cases.items():
        path = tmp_path / f"{name}.json"
        path.write_text(content)
        result = CliRunner().invoke(
            _fairtrain(), ["trace", str(leak["picture"]), "--candidates", str(path)]
        )
        assert result.exit_code == 2, (name, result.output)
    assert load_candidates(_candidates_file(tmp_path, KEYS)) == KEYS


def test_short_keys_are_refused() -> None:
    with pytest.raises(InvalidInput) as refused:
        trace_files([], {"lic": bytes(8)})
    assert refused.value.code == "watermark_key_too_short"


def test_the_app_alone_runs_its_one_command(leak: dict[str, Path], tmp_path: Path) -> None:
    candidates = _candidates_file(tmp_path, KEYS)
    result = CliRunner().invoke(app, [str(leak["text"]), "--candidates", str(candidates), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["verdict"]["licence_id"] == A
