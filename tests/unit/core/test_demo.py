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


def test_the_demo_marketplace_is_seeded_once_through_the_real_services(  # type: ignore[no-untyped-def]
    app, db: Session, client: TestClient
) -> None:
    from fairtrain.catalog.models import CatalogEntry
    from fairtrain.demo import seed_marketplace
    from fairtrain.licensing.models import Licence

    seed_demo(db, app.state.passwords)
    db.commit()
    assert seed_marketplace(app.state.sessions, app.state.settings, app.state.runtime)
    assert not seed_marketplace(app.state.sessions, app.state.settings, app.state.runtime)
    listed = db.scalar(select(func.count()).select_from(CatalogEntry))
    assert listed == 7  # five photos, a chat and a note, each processed and approved
    assert db.scalar(select(func.count()).select_from(Licence)) == 1
    ada = DEMO_LOGINS[0]
    client.post("/api/v1/auth/login", json={"email": ada.email, "password": ada.password})
    earnings = client.get("/api/v1/me/earnings").json()
    assert earnings["totals"]["EUR"] > 0
    assets = client.get("/api/v1/assets").json()
    chat = next(a for a in assets if a["display_name"] == "chat-with-jonas.txt")
    redacted = client.get(f"/api/v1/assets/{chat['id']}/content").text
    assert "Jonas" not in redacted and "2345678" not in redacted
    assert verify_stored_chain(db)[0]
