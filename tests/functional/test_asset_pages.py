"""The review page: a contributor sees what will be shared, says which part is theirs,
approves, or erases; every form is CSRF-protected and another person's asset is 404."""

from __future__ import annotations

import re
from typing import Any

from tests.factories import Actor, sign_up_contributor
from tests.media_factory import png_bytes

CHAT = (
    "12/01/2024, 10:00 - Zed Quux: hello, call me on +44 7700 900123 tomorrow\n"
    "12/01/2024, 10:01 - Yan Blop: my email is yan@example.org, see you at nine\n"
)


def _upload(actor: Actor, data: bytes, name: str) -> str:
    response = actor.client.post(
        "/api/v1/uploads", content=data, params={"filename": name}, headers=actor.headers()
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _csrf(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, "the page carries a CSRF token"
    return match.group(1)


def test_review_identify_approve_and_erase_through_the_pages(make_client: Any) -> None:
    zed = sign_up_contributor(make_client(), name="Z. Q.")
    asset_id = _upload(zed, CHAT.encode(), "chat.txt")
    page = zed.client.get(f"/assets/{asset_id}")
    assert page.status_code == 200
    assert "Which part is yours?" in page.text and "Yan Blop" in page.text
    chosen = zed.client.post(
        f"/assets/{asset_id}/identify",
        data={"chat_sender": "Zed Quux", "csrf_token": _csrf(page.text)},
        follow_redirects=False,
    )
    assert chosen.status_code == 303
    page = zed.client.get(f"/assets/{asset_id}")
    assert "What will be shared" in page.text
    assert "[message from another person withheld]" in page.text
    assert "7700" not in page.text.split("As shared", 1)[1]
    forged = zed.client.post(
        f"/assets/{asset_id}/approve", data={"csrf_token": "forged"}, follow_redirects=False
    )
    assert forged.status_code == 403
    approved = zed.client.post(
        f"/assets/{asset_id}/approve",
        data={"csrf_token": _csrf(page.text)},
        follow_redirects=False,
    )
    assert approved.status_code == 303
    assert zed.client.get(f"/api/v1/assets/{asset_id}").json()["state"] == "listed"
    again = zed.client.post(f"/assets/{asset_id}/approve", data={"csrf_token": _csrf(page.text)})
    assert again.status_code == 409 and "ready for review" in again.text
    erased = zed.client.post(
        f"/assets/{asset_id}/erase", data={"csrf_token": _csrf(page.text)}, follow_redirects=False
    )
    assert erased.status_code == 303
    assert zed.client.get(f"/api/v1/assets/{asset_id}").json()["state"] == "erased"


def test_a_text_preview_marks_what_is_replaced(make_client: Any) -> None:
    ada = sign_up_contributor(make_client(), name="Ada Page")
    text = "Please write to maria.lopez@example.com or call +1 415 555 0134 after lunch."
    asset_id = _upload(ada, text.encode(), "note.txt")
    page = ada.client.get(f"/assets/{asset_id}").text
    assert '<mark title="EMAIL_ADDRESS">maria.lopez@example.com</mark>' in page
    # The shared version only (the edit form below it lists the originals, to leave in).
    shared = page.split("As shared", 1)[1].split("</pre>", 1)[0]
    assert "maria.lopez" not in shared and "[EMAIL_ADDRESS_1]" in shared
    assert 'name="keep_span"' in page and "What is still there" in page


def test_an_image_preview_points_at_the_redacted_version_only(make_client: Any) -> None:
    ada = sign_up_contributor(make_client(), name="Ada Image")
    asset_id = _upload(ada, png_bytes(size=(200, 150)), "p.png")
    page = ada.client.get(f"/assets/{asset_id}").text
    assert f"/api/v1/assets/{asset_id}/content?version=redacted" in page
    assert "version=original" not in page
    other = sign_up_contributor(make_client(), name="Not Owner")
    assert other.client.get(f"/assets/{asset_id}").status_code == 404


def test_terms_are_chosen_and_explained_on_the_page(make_client: Any) -> None:
    ada = sign_up_contributor(make_client(), name="Ada Terms Page")
    asset_id = _upload(ada, png_bytes(size=(200, 150), seed=3), "p.png")
    page = ada.client.get(f"/assets/{asset_id}").text
    assert "No terms yet" in page and "protective default" in page
    form = {"template": "open_attribution", "price": "0", "currency": "EUR",
            "csrf_token": _csrf(page)}  # fmt: skip
    unconsented = ada.client.post(f"/assets/{asset_id}/terms", data=form)
    assert unconsented.status_code == 422  # open terms allow biometric uses: GDPR Art. 9
    assert "explicit consent" in unconsented.text
    saved = ada.client.post(
        f"/assets/{asset_id}/terms",
        data=form | {"explicit_biometric_consent": "yes"},
        follow_redirects=False,
    )
    assert saved.status_code == 303, saved.text
    page = ada.client.get(f"/assets/{asset_id}").text
    assert "Version 1" in page
    assert "Buyers may use it for any purpose." in page
    assert "They must name you as the source." in page
    assert "A photo of your face can be used to find you in other photos." in page
    bad = ada.client.post(
        f"/assets/{asset_id}/terms",
        data={"template": "default", "price": "lots", "csrf_token": _csrf(page)},
    )
    assert bad.status_code == 422 and "must be a number" in bad.text
    below = ada.client.post(
        f"/assets/{asset_id}/terms",
        data={"template": "default", "price": "0.001", "csrf_token": _csrf(page)},
    )
    assert below.status_code == 422
    assert ada.client.get(f"/api/v1/assets/{asset_id}/policy").json()["version"] == 1
