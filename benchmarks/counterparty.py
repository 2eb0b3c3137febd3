"""A counterparty's own side of a long call: time and memory of cutting out one channel.

    uv run python benchmarks/counterparty.py            # a 60-minute stereo call
    uv run python benchmarks/counterparty.py --quick    # 10 minutes

``privacy.media.only_channel`` (what ``GET /api/v1/invites/{token}/part`` runs) decodes
and writes frame by frame. The baseline in the same run is the whole-file way the
redactors read audio: ``media.decode_audio(mono=False)`` into memory, then one channel
written to FLAC. Each runs in a fresh process that reports its own peak RSS (VmHWM)
above its RSS once imports are done, so neither sees the other's memory.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile

RATE = 16_000  # phone-call audio; the rate does not change the ratios
BLOCK = RATE * 10


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _write_call(path: Path, minutes: int) -> None:
    """Two unrelated 'voices' (a gated tone, noise), written a block at a time."""
    rng = np.random.default_rng(1)
    with soundfile.SoundFile(str(path), "w", RATE, 2, subtype="PCM_16") as out:
        for start in range(0, minutes * 60 * RATE, BLOCK):
            t = (start + np.arange(BLOCK)) / RATE
            left = 0.3 * np.sin(2 * np.pi * 220 * t) * (np.sin(2 * np.pi * 0.2 * t) > 0)
            right = 0.2 * rng.standard_normal(BLOCK) * (np.sin(2 * np.pi * 0.2 * t) <= 0)
            out.write(np.stack([left, right], axis=1).clip(-0.9, 0.9))


def _child(method: str, source: Path, target: Path) -> None:
    from fairtrain.media import decode_audio
    from fairtrain.privacy.media import only_channel

    settled = _status_kib("VmRSS")
    started = time.perf_counter()
    if method == "streamed":
        only_channel(source, target, 1)
    else:
        samples = decode_audio(source, rate=RATE, mono=False)
        soundfile.write(str(target), samples[1], RATE, format="FLAC", subtype="PCM_16")
    elapsed = time.perf_counter() - started
    growth = (_status_kib("VmHWM") - settled) / 1024
    print(json.dumps({"seconds": elapsed, "growth_mib": growth}))


def _run(method: str, source: Path, target: Path) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", method, str(source), str(target)],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child", nargs=3, metavar=("METHOD", "SOURCE", "TARGET"))
    args = parser.parse_args()
    if args.child:
        _child(args.child[0], Path(args.child[1]), Path(args.child[2]))
        return
    minutes = 10 if args.quick else 60
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        call = work / "call.wav"
        _write_call(call, minutes)
        size = call.stat().st_size / 2**20
        streamed = _run("streamed", call, work / "s.flac")
        whole = _run("whole", call, work / "w.flac")
        ours, theirs = soundfile.read(work / "s.flac")[0], soundfile.read(work / "w.flac")[0]
        same = np.array_equal(ours, theirs)
    audio_seconds = minutes * 60
    print(f"stereo call: {minutes} min at {RATE} Hz, {size:,.0f} MiB WAV; same output: {same}")
    print(
        f"only_channel (streamed):  {audio_seconds / streamed['seconds']:,.0f}x real time, "
        f"peak RSS growth {streamed['growth_mib']:,.1f} MiB"
    )
    print(
        f"decode all, then write:   {audio_seconds / whole['seconds']:,.0f}x real time, "
        f"peak RSS growth {whole['growth_mib']:,.1f} MiB"
    )
    print(
        f"streamed / whole: time {streamed['seconds'] / whole['seconds']:.2f}x, "
        f"memory {streamed['growth_mib'] / max(whole['growth_mib'], 0.1):.3f}x"
    )


if __name__ == "__main__":
    main()
