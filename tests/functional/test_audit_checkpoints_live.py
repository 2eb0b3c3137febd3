"""The app signs audit checkpoints by itself every FAIRTRAIN_AUDIT_CHECKPOINT_EVERY events.

Uses the app's own session factory (the shared fixtures swap it for a savepoint-isolated
one), on a fresh SQLite file migrated like a real deployment.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from starlette.testclient import TestClient
from tests.conftest import make_test_settings
from tests.factories import sign_up_contributor

from fairtrain.app import create_app
from fairtrain.audit.models import AuditCheckpoint, AuditEvent
from fairtrain.db import make_engine
from fairtrain.migrate import upgrade


def test_the_app_signs_a_checkpoint_every_n_events(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'live.db'}"
    upgrade(make_engine(url))
    settings = make_test_settings(tmp_path / "data", url).model_copy(
        update={"audit_checkpoint_every": 4}
    )
    app = create_app(settings)
    with TestClient(app) as client:
        for _ in range(5):
            sign_up_contributor(client)
    with app.state.sessions() as session:
        events = len(session.scalars(select(AuditEvent.seq)).all())
        sizes = sorted(session.scalars(select(AuditCheckpoint.tree_size)))
    assert events >= 9
    assert sizes == list(range(4, events + 1, 4)), (events, sizes)
