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


def _digest(page: str) -> str:
    match = re.search(r'name="digest" value="([0-9a-f]{64})"', page)
    assert match, "a preview carries the digest of what it showed"
    return match.group(1)


def test_main_terms_are_previewed_in_plain_words_before_they_are_saved(
    make_client: Any,
) -> None:
    ada = sign_up_contributor(make_client(), name="Ada Edits")
    asset_id = _upload(ada, png_bytes(size=(200, 150), seed=4), "p.png")
    page = ada.client.get(f"/assets/{asset_id}").text
    assert 'id="edit-terms"' in page and "Preview in plain words" in page
    form = {
        "csrf_token": _csrf(page),
        "allowed": ["academic_research", "model_training"],
        "prohibited": ["voice_cloning", "face_recognition", "biometric_identification",
                       "emotion_recognition", "synthetic_likeness", "political_campaigning",
                       "surveillance"],
        "territories": "DE, fr",
        "term_months": "6",
        "price": "2.50",
        "currency": "EUR",
        "attribution": "yes",
        "ends_on": "2099-06-30",
    }  # fmt: skip
    shown = ada.client.post(f"/assets/{asset_id}/terms/edit", data=form | {"step": "save"})
    # A save without a preview of exactly these terms shows the preview instead.
    assert shown.status_code == 200
    assert "Your new terms in plain words" in shown.text
    assert "They must name you as the source." in shown.text
    assert "Only in France or Germany." in shown.text
    assert "Before you agree" in shown.text
    assert ada.client.get(f"/api/v1/assets/{asset_id}/policy").status_code == 404
    digest = _digest(shown.text)
    changed = ada.client.post(
        f"/assets/{asset_id}/terms/edit",
        data=form | {"step": "save", "digest": digest, "price": "3.00"},
    )
    assert changed.status_code == 200 and _digest(changed.text) != digest  # shown again
    saved = ada.client.post(f"/assets/{asset_id}/terms/edit",
                            data=form | {"step": "save", "digest": digest},
                            follow_redirects=False)  # fmt: skip
    assert saved.status_code == 303, saved.text
    policy = ada.client.get(f"/api/v1/assets/{asset_id}/policy").json()
    assert policy["summary"]["price_minor"] == 250
    assert policy["summary"]["territories"] == ["DE", "FR"]
    assert policy["summary"]["not_after"].startswith("2099-06-30T23:59:59")
    page = ada.client.get(f"/assets/{asset_id}").text
    assert "ends on 2099-06-30" in page and "Renew your consent" in page
    assert 'value="DE, FR"' in page  # the form shows the terms as they are now
    renewed = ada.client.post(f"/assets/{asset_id}/terms/renew",
                              data={"csrf_token": _csrf(page), "until": "2100-01-31"},
                              follow_redirects=False)  # fmt: skip
    assert renewed.status_code == 303, renewed.text
    page = ada.client.get(f"/assets/{asset_id}").text
    assert "was renewed and ends on 2100-01-31" in page
    assert "renewal" in page and "RenewedConsentGiven" in page  # the receipts table
    earlier = ada.client.post(
        f"/assets/{asset_id}/terms/renew", data={"csrf_token": _csrf(page), "until": "2050-01-01"}
    )
    assert earlier.status_code == 422 and "renewal_not_later" in earlier.text
    bad = ada.client.post(f"/assets/{asset_id}/terms/edit",
                          data=form | {"term_months": "many"})  # fmt: skip
    assert bad.status_code == 422 and "whole number of months" in bad.text


def test_bulk_terms_are_previewed_then_applied_to_the_ticked_media(make_client: Any) -> None:
    ada = sign_up_contributor(make_client(), name="Ada Bulk")
    ids = [_upload(ada, png_bytes(size=(120, 90), seed=s), f"p{s}.png") for s in (5, 6, 7)]
    page = ada.client.get("/assets").text
    assert "Change the terms of several at once" in page
    form = {
        "csrf_token": _csrf(page),
        "asset_ids": ids[:2],
        "allowed": ["academic_research"],
        "prohibited": ["commercial_use"],
        "price": "1.20",
        "term_months": "12",
    }
    nothing = ada.client.post("/assets/terms/bulk", data=form | {"asset_ids": []})
    assert nothing.status_code == 422 and "no_assets_chosen" in nothing.text
    other = sign_up_contributor(make_client(), name="Not Ada")
    foreign = _upload(other, png_bytes(size=(120, 90), seed=8), "x.png")
    stolen = ada.client.post("/assets/terms/bulk", data=form | {"asset_ids": [ids[0], foreign]})
    assert stolen.status_code == 422 and "asset_not_found" in stolen.text
    shown = ada.client.post("/assets/terms/bulk", data=form)
    assert shown.status_code == 200 and "Your new terms in plain words" in shown.text
    saved = ada.client.post("/assets/terms/bulk",
                            data=form | {"step": "save", "digest": _digest(shown.text)},
                            follow_redirects=False)  # fmt: skip
    assert saved.status_code == 303
    assert "New terms saved for 2" in ada.client.get(saved.headers["location"]).text
    for asset_id in ids[:2]:
        summary = ada.client.get(f"/api/v1/assets/{asset_id}/policy").json()["summary"]
        assert summary["permitted"] == ["academic_research"] and summary["price_minor"] == 120
    assert ada.client.get(f"/api/v1/assets/{ids[2]}/policy").status_code == 404
