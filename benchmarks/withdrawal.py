"""Withdrawal benchmark: from a contributor's withdrawal to the buyer's webhook.

    uv run python benchmarks/withdrawal.py            # 40 withdrawals
    uv run python benchmarks/withdrawal.py --quick    # 10 withdrawals

A real app (SQLite file, local vault, jobs run in-process right after each commit, as
the embedded default does with no queue lag) serves a contributor with N listed notes,
all licensed by one buyer whose webhook receiver listens on loopback (``http.server`` in
a thread, verifying each Standard Webhooks signature). For each note in turn the
contributor withdraws it (``POST /api/v1/withdrawals`` through the ASGI test client), and
the latency is measured from just before the request to the moment the receiver has the
verified notice: the withdrawal's transaction (catalogue, a new dataset version, the
receipt, the notice, the export shred) plus the signed delivery. The baseline is a bare
signed HTTP POST of the same kind of body to the same receiver. p50 and p95 of both.
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from pydantic import SecretStr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from fastapi.testclient import TestClient  # noqa: E402
from tests.factories import list_asset, login, sign_up_buyer, sign_up_contributor  # noqa: E402
from tests.functional.webhook_receiver import serve_receiver  # noqa: E402
from tests.functional.withdrawal_world import buy, dataset_body, register_webhook  # noqa: E402

from fairtrain.accounts import service as accounts  # noqa: E402
from fairtrain.accounts.models import UserKind  # noqa: E402
from fairtrain.app import create_app  # noqa: E402
from fairtrain.config import Mode, Settings  # noqa: E402
from fairtrain.db import make_engine, session_scope  # noqa: E402
from fairtrain.ids import utcnow  # noqa: E402
from fairtrain.migrate import upgrade  # noqa: E402
from fairtrain.withdrawal.webhooks import signed_request  # noqa: E402

PASSWORD = "quartz-lantern-orbit-meadow-41"


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--withdrawals", type=int, default=40)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    count = 10 if args.quick else args.withdrawals
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        settings = Settings(
            mode=Mode.DEV,
            data_dir=root / "data",
            database_url=f"sqlite:///{root / 'bench.db'}",
            secret_key=SecretStr(secrets.token_urlsafe(48)),
            argon2_time_cost=1,
            argon2_memory_kib=1024,
            argon2_parallelism=1,
            jobs_url="immediate",
        )
        engine = make_engine(settings.effective_database_url)
        upgrade(engine)
        app = create_app(settings)
        with (
            TestClient(app) as c1,
            TestClient(app) as c2,
            TestClient(app) as c3,
            serve_receiver() as receiver,
        ):
            contributor = sign_up_contributor(c1, name="Bench Contributor")
            began = time.perf_counter()
            notes = [
                list_asset(contributor, f"Note {i}: the tide comes in at {i} o'clock.".encode(),
                           f"note{i}.txt")
                for i in range(count)
            ]  # fmt: skip
            listing = time.perf_counter() - began
            buyer = sign_up_buyer(c2, org_name="Bench Labs")
            email = f"operator-{secrets.token_hex(3)}@example.org"
            with session_scope(app.state.sessions) as session:
                accounts.create_staff_user(
                    session, app.state.passwords, kind=UserKind.OPERATOR, email=email,
                    password=PASSWORD, display_name="Bench Operator", actor="system:bench",
                )  # fmt: skip
            operator = login(c3, email)
            buy(buyer, operator, dataset_body())
            receiver.secret = register_webhook(buyer, receiver.url)

            latencies: list[float] = []
            requests: list[float] = []
            for index, note in enumerate(notes):
                start = time.perf_counter()
                response = contributor.client.post(
                    "/api/v1/withdrawals",
                    json={"asset_ids": [note]},
                    headers=contributor.headers(),
                )
                requests.append(time.perf_counter() - start)
                assert response.status_code == 201, response.text
                receiver.wait_for(index + 1)
                latencies.append(receiver.arrived[index] - start)

            body = receiver.verified[-1]
            baseline: list[float] = []
            with httpx.Client() as http:
                for index in range(count):
                    start = time.perf_counter()
                    content, headers = signed_request(
                        f"msg_baseline{index}", receiver.secret, body, utcnow()
                    )
                    http.post(receiver.url, content=content, headers=headers).raise_for_status()
                    receiver.wait_for(count + index + 1)
                    baseline.append(receiver.arrived[count + index] - start)
        engine.dispose()
    ms = 1000.0
    report = {
        "withdrawals": count,
        "listing_seconds": round(listing, 1),
        "withdrawal_to_webhook_ms": {
            "p50": round(_percentile(latencies, 0.50) * ms, 1),
            "p95": round(_percentile(latencies, 0.95) * ms, 1),
            "mean": round(statistics.fmean(latencies) * ms, 1),
        },
        "withdrawal_request_ms": {
            "p50": round(_percentile(requests, 0.50) * ms, 1),
            "p95": round(_percentile(requests, 0.95) * ms, 1),
        },
        "bare_signed_post_ms": {
            "p50": round(_percentile(baseline, 0.50) * ms, 2),
            "p95": round(_percentile(baseline, 0.95) * ms, 2),
        },
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
