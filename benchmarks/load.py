"""Load on loopback: a real ``fairtrain serve`` under a realistic mix, bounded in time.

    uv run python benchmarks/load.py                      # 60 s, SQLite, 8 clients
    uv run python benchmarks/load.py --seconds 600        # the 10-minute soak
    uv run python benchmarks/load.py --database postgres --clients 16
    uv run python benchmarks/load.py --seconds 180 --only upload   # one kind of request

The server holds the demo marketplace (processed assets, a licence) and gets, from
``--clients`` threads each with its own connection: catalogue searches with random
filters and licence compatibility (55 %), catalogue item pages (10 %), previews (10 %),
contributors' asset lists (10 %), uploads of a new photo (10 %, each processed by the
server's in-process jobs) and audit-status reads by an operator (5 %). Printed: requests
per second, p50/p95/p99 latency per kind and overall, the error rate (5xx and dropped
connections; refusals are counted apart and expected to be 0), and the server's resident
memory sampled every 2 s: by minute, its growth per minute after a warm-up, and the
least-squares slope over the second half of the run (what judges "no memory growth":
caches that fill during warm-up level off before it). The baseline, in the same run and at
the same concurrency: ``GET /healthz`` (the cost of the HTTP stack alone).

``--only KIND`` (search, item, preview, assets, upload, audit) sends one kind of request
instead of the mix, to tell which kind grows; with ``FAIRTRAIN_MEMORY_TRACE_PATH`` set the
server also dumps where its memory is (see ``fairtrain.memory``).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.media_factory import png_bytes  # noqa: E402
from tests.reliability.crash import Platform, platform  # noqa: E402

from fairtrain.accounts.passwords import PasswordPolicy  # noqa: E402
from fairtrain.db import make_engine, make_session_factory, session_scope  # noqa: E402
from fairtrain.demo import DEMO_LOGINS, seed_demo, seed_marketplace  # noqa: E402
from fairtrain.migrate import upgrade  # noqa: E402
from fairtrain.runtime import Runtime  # noqa: E402

PURPOSES = ["fine_tuning", "speech_recognition", "academic_research", "model_evaluation"]
# The mix: each request kind's share; ``--only KIND`` sends that kind alone (a soak of one).
SHARES = {"search": 0.55, "item": 0.10, "preview": 0.10, "assets": 0.10, "upload": 0.10,
          "audit": 0.05}  # fmt: skip


def _seed(target: Platform) -> None:
    settings = target.settings()
    engine = make_engine(settings.effective_database_url)
    upgrade(engine)
    sessions = make_session_factory(engine)
    with session_scope(sessions) as session:
        seed_demo(session, PasswordPolicy(time_cost=1, memory_kib=1024, parallelism=1))
    seed_marketplace(sessions, settings, Runtime(settings))
    engine.dispose()


def _client(base: str) -> httpx.Client:
    # uvicorn closes a connection idle for 5 s (its keep-alive timeout) and httpx keeps
    # one for 5 s too: a request sent on it at that instant meets a reset (what browsers
    # retry unseen). The clients drop idle connections first, so a reset is the server's.
    return httpx.Client(base_url=base, timeout=30, limits=httpx.Limits(keepalive_expiry=2.0))


def _login(base: str, email: str, password: str) -> tuple[httpx.Client, str]:
    client = _client(base)
    body = client.post("/api/v1/auth/login", json={"email": email, "password": password})
    body.raise_for_status()
    return client, str(body.json()["csrf_token"])


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


def _slope(samples: list[tuple[float, float]]) -> float:
    """MiB per minute: the least-squares line through (seconds, MiB) samples."""
    if len(samples) < 2:
        return 0.0
    mean_t = sum(t for t, _ in samples) / len(samples)
    mean_m = sum(m for _, m in samples) / len(samples)
    spread = sum((t - mean_t) ** 2 for t, _ in samples)
    rise = sum((t - mean_t) * (m - mean_m) for t, m in samples)
    return rise / spread * 60 if spread else 0.0


Counter_ = dict[str, int]
_Call = tuple[str, Callable[[], httpx.Response]]


def _drive(
    clients: int,
    seconds: float,
    pick: Callable[[random.Random, int], tuple[str, Callable[[], httpx.Response]]],
) -> tuple[dict[str, list[float]], Counter_, float, list[str]]:
    latencies: dict[str, list[float]] = defaultdict(list)
    outcomes: Counter_ = defaultdict(int)
    errors: list[str] = []
    lock = threading.Lock()
    start = time.monotonic()
    deadline = start + seconds

    def run(index: int) -> None:
        rng = random.Random(index)
        while time.monotonic() < deadline:
            kind, call = pick(rng, index)
            began = time.perf_counter()
            detail = ""
            try:
                response = call()
                status = response.status_code
                if status >= 500:
                    detail = f"HTTP {status} {response.text[:300]}"
            except httpx.TimeoutException:
                status = -1  # no answer within the client's 30 s
                detail = "no answer within 30 s"
            except httpx.HTTPError as error:
                status = 0
                detail = f"{type(error).__name__}: {error}"
            took = time.perf_counter() - began
            with lock:
                latencies[kind].append(took)
                if detail and len(errors) < 20:  # what each error was, to find its cause
                    errors.append(f"{kind} at {time.monotonic() - start:.0f} s: {detail}")
                if status < 0:
                    outcomes["timeout"] += 1
                outcomes[
                    "error"
                    if status <= 0 or status >= 500
                    else "refused"
                    if status >= 400
                    else "ok"
                ] += 1

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, outcomes, time.monotonic() - began, errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument(
        "--only", choices=sorted(SHARES), help="one request kind instead of the mix (soaks)"
    )
    parser.add_argument(
        "--max-errors", type=int, help="exit 1 if more requests than this failed (make soak)"
    )
    parser.add_argument(
        "--max-growth",
        type=float,
        help="exit 1 if the server's RSS grew faster than this, MiB/min, over the second half",
    )
    args = parser.parse_args()
    failures: list[str] = []
    with tempfile.TemporaryDirectory() as tmp, platform(Path(tmp), args.database) as target:
        _seed(target)
        target.start()
        assert target.process is not None
        base = target.base_url
        ada, bea, otto = DEMO_LOGINS[0], DEMO_LOGINS[2], DEMO_LOGINS[3]
        contributors = [_login(base, ada.email, ada.password) for _ in range(args.clients)]
        buyers = [_login(base, bea.email, bea.password) for _ in range(args.clients)]
        operators = [_login(base, otto.email, otto.password) for _ in range(args.clients)]
        anonymous = [_client(base) for _ in range(args.clients)]
        listed = buyers[0][0].get("/api/v1/catalog", params={"limit": 50}).json()["items"]
        ids = [item["id"] for item in listed]
        seeds = iter(range(10**6))

        def health(rng: random.Random, i: int) -> tuple[str, Callable[[], httpx.Response]]:
            return "healthz", lambda: anonymous[i].get("/healthz")

        def search(rng: random.Random, i: int) -> _Call:
            buyer = buyers[i][0]
            params: dict[str, Any] = {"limit": 20, "sort": rng.choice(["newest", "cheapest"])}
            if rng.random() < 0.5:
                params |= {"purpose": rng.choice(PURPOSES), "territory": "NL"}
            if rng.random() < 0.5:
                params["modality"] = rng.choice(["image", "chat", "text"])
            return "catalogue search", lambda: buyer.get("/api/v1/catalog", params=params)

        def item(rng: random.Random, i: int) -> _Call:
            buyer = buyers[i][0]
            return "catalogue item", lambda: buyer.get(f"/api/v1/catalog/{rng.choice(ids)}")

        def preview(rng: random.Random, i: int) -> _Call:
            buyer = buyers[i][0]
            return "preview", lambda: buyer.get(f"/api/v1/catalog/{rng.choice(ids)}/preview")

        def assets(rng: random.Random, i: int) -> _Call:
            client = contributors[i][0]
            return "asset list", lambda: client.get("/api/v1/assets")

        def upload(rng: random.Random, i: int) -> _Call:
            client, csrf = contributors[i]
            data = png_bytes(size=(96, 72), seed=next(seeds) + 5000)
            return "upload", lambda: client.post(
                "/api/v1/uploads",
                content=data,
                params={"filename": "load.png"},
                headers={"X-CSRF-Token": csrf},
            )

        def audit(rng: random.Random, i: int) -> _Call:
            return "audit status", lambda: operators[i][0].get("/api/v1/audit/status")

        makers = {"search": search, "item": item, "preview": preview, "assets": assets,
                  "upload": upload, "audit": audit}  # fmt: skip
        kinds = [args.only] if args.only else list(SHARES)
        weighted = [(SHARES[k] if not args.only else 1.0, makers[k]) for k in kinds]

        def mix(rng: random.Random, i: int) -> _Call:
            roll = rng.random()
            for share, make in weighted:
                if roll < share:
                    return make(rng, i)
                roll -= share
            return weighted[-1][1](rng, i)

        warm = min(10.0, args.seconds / 6)
        base_lat, _, base_took, _ = _drive(args.clients, min(15.0, args.seconds / 4), health)
        memory: list[tuple[float, float]] = []
        stop = threading.Event()
        started = time.monotonic()

        def sample() -> None:
            pid = target.process.pid if target.process else 0
            while not stop.wait(2.0):
                memory.append((time.monotonic() - started, _rss_mib(pid)))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        latencies, outcomes, took, errors = _drive(args.clients, args.seconds, mix)
        stop.set()
        sampler.join()
        everything = [t for values in latencies.values() for t in values]
        total = sum(outcomes.values())
        floor = [t for values in base_lat.values() for t in values]
        print(f"load: {args.clients} clients, {took:.0f} s, {args.database}")
        print(
            f"  baseline GET /healthz: {len(floor) / base_took:,.0f} req/s, "
            f"p99 {_percentile(floor, 0.99) * 1000:.1f} ms"
        )
        print(
            f"  mix: {total / took:,.1f} req/s ({total / took / (len(floor) / base_took):.3f}x "
            f"the baseline), p50 {_percentile(everything, 0.5) * 1000:.1f} ms, "
            f"p95 {_percentile(everything, 0.95) * 1000:.1f} ms, "
            f"p99 {_percentile(everything, 0.99) * 1000:.1f} ms"
        )
        print(
            f"  errors {outcomes.get('error', 0)} of {total} "
            f"({outcomes.get('error', 0) / max(total, 1):.4%}, of which "
            f"{outcomes.get('timeout', 0)} got no answer within 30 s); refusals "
            f"{outcomes.get('refused', 0)}"
        )
        for error in errors:
            print(f"    error: {error}")
        if args.max_errors is not None and outcomes.get("error", 0) > args.max_errors:
            failures.append(f"{outcomes.get('error', 0)} errors (at most {args.max_errors})")
        for kind in sorted(latencies):
            values = latencies[kind]
            print(
                f"  {kind:17} {len(values):7,} p50 {_percentile(values, 0.5) * 1000:7.1f} ms"
                f"  p99 {_percentile(values, 0.99) * 1000:7.1f} ms"
            )
        after = [(t, m) for t, m in memory if t >= warm]
        if args.max_growth is not None and len(after) < 2:
            failures.append("the run was too short to judge memory growth")
        if len(after) >= 2:
            (t0, m0), (t1, m1) = after[0], after[-1]
            print(
                f"  server RSS: {m0:.0f} MiB after warm-up, {m1:.0f} MiB at the end, "
                f"max {max(m for _, m in memory):.0f} MiB; growth "
                f"{(m1 - m0) / max((t1 - t0) / 60, 1e-9):+.2f} MiB/min end to end, "
                f"{_slope(after):+.2f} MiB/min least squares"
            )
            # Growth that levels off is caches filling; growth that goes on is a leak: the
            # second half's slope is the one that judges "no memory growth".
            half = [(t, m) for t, m in memory if t >= took / 2]
            uploads = len(latencies.get("upload", []))
            print(
                f"  second half ({took / 2:.0f} s to the end): {_slope(half):+.2f} MiB/min"
                + (
                    f", {_slope(half) * took / 60 / max(uploads, 1) * 1024:.1f} KiB per upload"
                    if uploads
                    else ""
                )
            )
            if args.max_growth is not None and _slope(half) > args.max_growth:
                failures.append(
                    f"RSS grew {_slope(half):+.2f} MiB/min over the second half "
                    f"(at most {args.max_growth:+.2f})"
                )
            minutes = {int(t // 60): m for t, m in after}
            print("  RSS by minute: " + ", ".join(f"{m:.0f}" for _, m in sorted(minutes.items())))
        load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
        print(f"  load average at the end: {load}")
        for client, _ in contributors + buyers + operators:
            client.close()
        for client in anonymous:
            client.close()
    if failures:
        print("load: FAILED: " + "; ".join(failures))
        raise SystemExit(1)


if __name__ == "__main__":
    main()
