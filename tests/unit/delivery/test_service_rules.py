"""Only an active licence within its term can be exported or downloaded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fairtrain.delivery.service import check_active, licence_owner
from fairtrain.errors import Forbidden
from fairtrain.licensing.models import Licence, LicenceState

NOW = datetime(2027, 6, 1, tzinfo=UTC)


def _licence(state: LicenceState, starts: timedelta, ends: timedelta) -> Licence:
    return Licence(id="lic_x", state=state, starts_at=NOW + starts, ends_at=NOW + ends)


def test_an_active_licence_within_its_term_may_be_delivered() -> None:
    check_active(_licence(LicenceState.ACTIVE, -timedelta(days=1), timedelta(days=1)), NOW)


@pytest.mark.parametrize(
    ("state", "starts", "ends", "says"),
    [
        (LicenceState.EXPIRED, -timedelta(days=400), -timedelta(days=35), "expired"),
        (LicenceState.SUSPENDED, -timedelta(days=1), timedelta(days=1), "suspended"),
        # Past its end, before the daily `licences expire` has marked it.
        (LicenceState.ACTIVE, -timedelta(days=400), -timedelta(seconds=1), "term has ended"),
        # A renewal starts when the licence it renews ends.
        (LicenceState.ACTIVE, timedelta(days=3), timedelta(days=368), "starts on 2027-06-04"),
    ],
)
def test_anything_else_is_refused(
    state: LicenceState, starts: timedelta, ends: timedelta, says: str
) -> None:
    with pytest.raises(Forbidden) as refused:
        check_active(_licence(state, starts, ends), NOW)
    assert refused.value.code == "licence_not_active" and says in refused.value.detail


def test_exports_are_owned_by_their_licence_in_the_vault() -> None:
    assert licence_owner("lic_abc") == "licence:lic_abc"
