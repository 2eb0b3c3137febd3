"""Demo data: seeded once, idempotent on restart, and the printed logins work."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fairtrain.accounts.models import User
from fairtrain.audit.service import verify_stored_chain
from fairtrain.demo import DEMO_LOGINS, seed_demo


def test_seed_is_idempotent_and_logins_work(app, db: Session, client: TestClient) -> None:  # type: ignore[no-untyped-def]
    seed_demo(db, app.state.passwords)
    db.commit()
    count = db.scalar(select(func.count()).select_from(User))
    seed_demo(db, app.state.passwords)
    db.commit()
    assert db.scalar(select(func.count()).select_from(User)) == count
    for login in DEMO_LOGINS:
        response = client.post(
            "/api/v1/auth/login", json={"email": login.email, "password": login.password}
        )
        assert response.status_code == 200, (login.role, response.text)
        assert response.json()["kind"] == login.role
    assert verify_stored_chain(db)[0]
