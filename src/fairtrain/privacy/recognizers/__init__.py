"""fairtrain's recognisers, added to Presidio's own in ``fairtrain.privacy.text``."""

from __future__ import annotations

from presidio_analyzer import EntityRecognizer

from fairtrain.privacy.recognizers.address import AddressRecognizer
from fairtrain.privacy.recognizers.numbers import (
    OfflineEmailRecognizer,
    card_recognizer,
    date_of_birth_recognizer,
    datetime_recognizer,
    driver_licence_recognizer,
    handle_recognizer,
    national_id_recognizer,
    phone_recognizer,
    plate_recognizer,
    postcode_recognizer,
)
from fairtrain.privacy.recognizers.people import (
    age_recognizer,
    location_recognizer,
    nationality_recognizer,
    organisation_recognizer,
    person_recognizer,
    title_recognizer,
)

__all__ = ["OfflineEmailRecognizer", "fairtrain_recognizers"]


def fairtrain_recognizers() -> list[EntityRecognizer]:
    """Every rule recogniser fairtrain adds to Presidio's registry."""
    return [
        AddressRecognizer(),
        person_recognizer(),
        title_recognizer(),
        age_recognizer(),
        nationality_recognizer(),
        location_recognizer(),
        organisation_recognizer(),
        card_recognizer(),
        phone_recognizer(),
        postcode_recognizer(),
        plate_recognizer(),
        driver_licence_recognizer(),
        national_id_recognizer(),
        handle_recognizer(),
        date_of_birth_recognizer(),
        datetime_recognizer(),
        OfflineEmailRecognizer(),
    ]
