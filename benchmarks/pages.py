"""Pages benchmark: what rendering a marketplace page costs over the API answer it shows.

    uv run python benchmarks/pages.py             # 200 requests per route
    uv run python benchmarks/pages.py --quick     # 40

Starts ``fairtrain serve --demo`` (a throw-away data directory, the demo marketplace)
and asks, as the demo buyer and contributor over loopback HTTP, each page and the API
route with the same data in turn (the baseline, measured in the same run): the catalogue
search with a licence check, a dataset with its representation chart, and a contributor's
earnings with their chart. Prints the median and 95th percentile latency of each and the
page/API ratio of the medians.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from fairtrain.demo import DEMO_LOGINS

BUYER, CONTRIBUTOR = DEMO_LOGINS[2], DEMO_LOGINS[0]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _client(base: str, email: str, password: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=30)
    answer = client.post("/api/v1/auth/login", json={"email": email, "password": password})
    answer.raise_for_status()
    return client


def _timed(client: httpx.Client, path: str, n: int, accept: str) -> list[float]:
    client.get(path, headers={"Accept": accept}).raise_for_status()  # warm
    took = []
    for _ in range(n):
        start = time.perf_counter()
        client.get(path, headers={"Accept": accept}).raise_for_status()
        took.append((time.perf_counter() - start) * 1000)
    return took


def _p95(values: list[float]) -> float:
    return sorted(values)[int(len(values) * 0.95) - 1]


def run(base: str, n: int) -> None:
    buyer = _client(base, BUYER.email, BUYER.password)
    seller = _client(base, CONTRIBUTOR.email, CONTRIBUTOR.password)
    dataset = buyer.get("/api/v1/datasets").json()[0]["id"]
    pairs = [
        ("catalogue search", buyer, "/catalogue?purpose=fine_tuning&territory=NL",
         "/api/v1/catalog?purpose=fine_tuning&territory=NL"),
        ("dataset + chart", buyer, f"/datasets/{dataset}", f"/api/v1/datasets/{dataset}"),
        ("earnings + chart", seller, "/me/earnings", "/api/v1/me/earnings"),
    ]  # fmt: skip
    header = ("route", "page p50", "page p95", "API p50", "API p95", "ratio")
    print("{:<18} {:>9} {:>9} {:>8} {:>8} {:>6}".format(*header))
    for name, client, page, api in pairs:
        pages = _timed(client, page, n, "text/html")
        apis = _timed(client, api, n, "application/json")
        ratio = statistics.median(pages) / statistics.median(apis)
        print(
            f"{name:<18} {statistics.median(pages):>7.1f}ms {_p95(pages):>7.1f}ms "
            f"{statistics.median(apis):>6.1f}ms {_p95(apis):>6.1f}ms {ratio:>6.2f}"
        )
    buyer.close()
    seller.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n = 40 if args.quick else 200
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="fairtrain-pages-") as data_dir:
        server = subprocess.Popen(
            [str(Path(sys.executable).parent / "fairtrain"), "serve", "--demo", "--port",
             str(port)],
            env=os.environ | {"FAIRTRAIN_DATA_DIR": data_dir},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 300
            while True:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the demo server did not start")
                try:
                    if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.5)
            run(base, n)
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
