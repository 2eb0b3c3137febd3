"""Concurrent requests on the embedded shape (SQLite, one uvicorn process): they queue for
the database's write lock in worker threads, never on the event loop. (A read of the
session on the event loop deadlocked a request holding the lock, found by the load
benchmark: four simultaneous catalogue searches all timed out.)"""

from __future__ import annotations

import threading

import httpx
from tests.factories import STRONG_PASSWORD, unique_email


def _login(base: str, email: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=15)
    response = client.post("/api/v1/auth/login", json={"email": email, "password": STRONG_PASSWORD})
    assert response.status_code == 200, response.text
    return client


def test_simultaneous_requests_are_all_answered(live_server: str) -> None:
    email = unique_email("concurrent")
    created = httpx.post(f"{live_server}/api/v1/accounts/buyers", json={
        "org_name": "Concurrent Buyers", "email": email, "password": STRONG_PASSWORD,
        "display_name": "Con Current", "jurisdiction": "NL"}, timeout=15)  # fmt: skip
    assert created.status_code == 201, created.text
    clients = [_login(live_server, email) for _ in range(8)]
    statuses: list[int] = []
    lock = threading.Lock()

    def ask(client: httpx.Client) -> None:
        for path in ("/api/v1/catalog?purpose=fine_tuning&territory=NL", "/api/v1/me",
                     "/api/v1/datasets"):  # fmt: skip
            try:
                code = client.get(path).status_code
            except httpx.TimeoutException:
                code = 0
            with lock:
                statuses.append(code)

    threads = [threading.Thread(target=ask, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for client in clients:
        client.close()
    assert statuses == [200] * 24, statuses
