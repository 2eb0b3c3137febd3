"""Recording, text and delivery-order fingerprints: round trips, no false attribution, and
the failure cases docs/watermark.md states, each checked to really fail."""

from __future__ import annotations

import io
import itertools
import math
import re
import unicodedata
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.media_factory import speech_wav
from tests.unit.delivery.watermark_media import licence_keys

from fairtrain.delivery.fingerprint import (
    NBSP,
    TYPOGRAPHIC_APOSTROPHE,
    _inversions,
    _order_p_value,
    canary_texts,
    detect_audio,
    detect_text,
    licence_order,
    mark_audio,
    mark_text,
    resample,
    subset_evidence,
)
from fairtrain.delivery.watermark import ATTRIBUTION_P_VALUE
from fairtrain.errors import InvalidInput

KEYS = licence_keys(4, salt=3)
LICENCES = list(KEYS)

SPEECH = (
    "I agree to license my recordings for speech recognition research, but not for voice "
    "cloning. Please pay me fairly every time a new dataset uses my voice, and tell me "
    "when it is withdrawn."
)


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> tuple[np.ndarray, int]:
    path = speech_wav(tmp_path_factory.mktemp("speech"), SPEECH)
    samples, rate = soundfile.read(str(path), dtype="float32")
    return samples, int(rate)


def _encode(samples: np.ndarray, rate: int, codec: str, container: str, bitrate: int) -> bytes:
    out = io.BytesIO()
    with av.open(out, "w", format=container) as target:
        stream = target.add_stream(codec, rate=48_000 if codec == "libopus" else rate)
        stream.bit_rate = bitrate
        stream.layout = "mono"
        resampler = av.AudioResampler(format=stream.format.name, layout="mono", rate=stream.rate)
        frame = av.AudioFrame.from_ndarray(samples[None, :], format="flt", layout="mono")
        frame.sample_rate = rate
        for converted in resampler.resample(frame):
            for packet in stream.encode(converted):
                target.mux(packet)
        for packet in stream.encode(None):
            target.mux(packet)
    return out.getvalue()


def _decode(data: bytes) -> np.ndarray:
    with av.open(io.BytesIO(data)) as source:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=16_000)
        pieces = [
            converted.to_ndarray().reshape(-1)
            for frame in source.decode(audio=0)
            for converted in resampler.resample(frame)
        ]
    return np.concatenate(pieces)


def _snr_db(original: np.ndarray, marked: np.ndarray) -> float:
    mark = marked.astype(np.float64) - original.astype(np.float64)
    return 10 * math.log10(np.sum(original.astype(np.float64) ** 2) / np.sum(mark**2))


def test_audio_mark_is_21_db_below_the_speech(speech: tuple[np.ndarray, int]) -> None:
    samples, rate = speech
    marked = mark_audio(samples, rate, key=KEYS[LICENCES[0]])
    assert marked.shape == samples.shape
    assert marked.dtype == np.float32
    assert 20.0 <= _snr_db(samples, marked) <= 24.0


def test_audio_round_trip_names_the_licence_among_four(speech: tuple[np.ndarray, int]) -> None:
    samples, rate = speech
    for licence in LICENCES[:2]:
        found = detect_audio(mark_audio(samples, rate, key=KEYS[licence]), rate, KEYS)
        assert found.licence_id == licence
        assert found.p_value <= ATTRIBUTION_P_VALUE
    assert detect_audio(samples, rate, KEYS).licence_id is None


@pytest.mark.parametrize(
    ("codec", "container", "bitrate"),
    [("libmp3lame", "mp3", 64_000), ("libopus", "ogg", 32_000)],
)
def test_audio_survives_lossy_reencoding(
    speech: tuple[np.ndarray, int], codec: str, container: str, bitrate: int
) -> None:
    samples, rate = speech
    marked = mark_audio(samples, rate, key=KEYS[LICENCES[1]])
    leaked = _decode(_encode(marked, rate, codec, container, bitrate))
    assert detect_audio(leaked, 16_000, KEYS).licence_id == LICENCES[1]
    unmarked = _decode(_encode(samples, rate, codec, container, bitrate))
    assert detect_audio(unmarked, 16_000, KEYS).licence_id is None


def test_audio_survives_resampling_trimming_and_stereo(speech: tuple[np.ndarray, int]) -> None:
    samples, rate = speech
    marked = mark_audio(samples, rate, key=KEYS[LICENCES[2]])
    at_44k = resample(marked, rate, 44_100)
    trimmed = at_44k[int(0.37 * 44_100) : -int(0.2 * 44_100)]
    stereo = np.stack([trimmed, trimmed * 0.8])
    assert detect_audio(stereo, 44_100, KEYS).licence_id == LICENCES[2]


def test_documented_limits_speed_change_and_short_clips_lose_the_mark(
    speech: tuple[np.ndarray, int],
) -> None:
    samples, rate = speech
    marked = mark_audio(samples, rate, key=KEYS[LICENCES[3]])
    # 2 % faster: the same samples played at a higher rate (pitch and tempo shift).
    sped_up = resample(marked, int(rate * 1.02), rate)
    assert detect_audio(sped_up, rate, KEYS).licence_id is None
    # Under one second there is not even one whole period of the sequence.
    assert detect_audio(marked[: rate // 2], rate, KEYS).details["reason"] == "too_short_or_silent"
    silent = np.zeros(rate * 3, dtype=np.float32)
    assert np.array_equal(mark_audio(silent, rate, key=KEYS[LICENCES[3]]), silent)


def test_audio_refusals() -> None:
    with pytest.raises(InvalidInput):
        mark_audio(np.zeros(100, dtype=np.float32), 4_000, key=KEYS[LICENCES[0]])
    with pytest.raises(InvalidInput):
        mark_audio(np.zeros(100, dtype=np.float32), 16_000, key=b"short")


# --- text -----------------------------------------------------------------------------

LETTER = """Dear team,

I've read the new terms and I'm happy to license my chat exports for research on
customer support, but I don't want them used for advertising. My sister's messages
aren't mine to share, so please keep [PERSON_1] and [PERSON_2] redacted, and don't
forget that [PERSON_3] asked to be left out as well. We'd agreed that the licence ends
in March; if it's renewed, I'd like to see who's buying before anything's sent.

[PERSON_1] says she'll consent herself once she's read the plain-language summary. It
wasn't clear to her whether the company's partners can see her name, and she won't
sign until that's answered. You'll find her questions below, and [PERSON_2]'s too.

Thanks for the quick reply last week; it's made this much easier. I can't wait to see
the first payout, and I'm sure the others who've joined feel the same. Let's talk on
Tuesday about the dataset card, the consent receipts and the withdrawal notices, since
they're what people ask about most when they hear what we're doing here."""


def _plain(text: str) -> str:
    """Fold every variant the mark can choose, so two copies compare by words."""
    folded = text.replace(NBSP, " ").replace(TYPOGRAPHIC_APOSTROPHE, "'")
    return "".join(c if not c.isdigit() else "#" for c in folded)


def test_text_mark_changes_no_word() -> None:
    marked = mark_text(LETTER, key=KEYS[LICENCES[0]])
    assert marked != LETTER
    assert _plain(marked) == _plain(LETTER)
    assert NBSP in marked
    assert TYPOGRAPHIC_APOSTROPHE in marked


def test_text_names_the_licence_and_an_excerpt_still_does() -> None:
    for licence in LICENCES:
        marked = mark_text(LETTER, key=KEYS[licence])
        found = detect_text(marked, KEYS)
        assert found.licence_id == licence, found.as_dict()
        excerpt = marked[len(marked) // 3 :]
        assert detect_text(excerpt, KEYS).licence_id == licence
    assert detect_text(LETTER, KEYS).licence_id is None


def test_text_marked_for_an_outsider_is_attributed_to_no_one() -> None:
    outsider = licence_keys(1, salt=11)
    marked = mark_text(LETTER, key=next(iter(outsider.values())))
    assert detect_text(marked, KEYS).licence_id is None
    assert detect_text(marked, outsider).licence_id is not None


def test_documented_limits_of_the_text_mark() -> None:
    licence = LICENCES[2]
    marked = mark_text(LETTER, key=KEYS[licence])
    before = detect_text(marked, KEYS).details["per_candidate"][licence]
    assert before["nbsp_matched"] > 0
    # NFKC turns no-break spaces into spaces; apostrophes and numbering survive it.
    nfkc = unicodedata.normalize("NFKC", marked)
    after = detect_text(nfkc, KEYS).details["per_candidate"][licence]
    assert NBSP not in nfkc
    assert after["nbsp_matched"] == 0
    assert after["apostrophes_matched"] == before["apostrophes_matched"]
    # Collapsing whitespace does the same to channel 2.
    collapsed = " ".join(marked.split())
    assert detect_text(collapsed, KEYS).details["per_candidate"][licence]["nbsp_matched"] == 0
    # Straightening quotes on top of NFKC and renumbering placeholders leaves nothing.
    flattened = nfkc.replace(TYPOGRAPHIC_APOSTROPHE, "'")
    for number in (1, 2, 3):
        flattened = flattened.replace(f"[PERSON_{number}]", "[PERSON]")
    gone = detect_text(flattened, KEYS)
    assert gone.licence_id is None
    assert gone.p_value == 1.0


def test_canary_sentences_are_keyed_and_found() -> None:
    ours = canary_texts(KEYS[LICENCES[0]], 3)
    assert len(set(ours)) == 3
    assert not set(ours) & set(canary_texts(KEYS[LICENCES[1]], 3))
    assert canary_texts(KEYS[LICENCES[0]], 3) == ours
    leak = "Some record.\n" + ours[1] + "\nAnother record."
    found = detect_text(leak, KEYS)
    assert found.licence_id == LICENCES[0]
    assert found.details["per_candidate"][LICENCES[0]]["canaries_found"] == 1


def test_placeholder_numbering_is_a_keyed_permutation() -> None:
    text = "[PERSON_1] met [PERSON_2] and [PERSON_3], then [PERSON_1] left. [EMAIL_1] only."
    marked = mark_text(text, key=KEYS[LICENCES[1]])
    numbers = [int(n) for n in re.findall(r"\[PERSON_(\d)\]", marked)]
    assert sorted(set(numbers)) == [1, 2, 3]
    assert numbers[0] == numbers[3]  # the same person keeps the same number
    assert "[EMAIL_1]" in marked  # a single entity has nothing to permute


words = st.sampled_from(
    ["data", "voice", "don't", "it's", "licence", "buyer's", "we'll", "consent", "[PERSON_1]",
     "[PERSON_2]", "terms", "can't", "pay", "fair", "O'Brien", "10", "rock'n'roll"]
)  # fmt: skip


@given(st.lists(words, min_size=1, max_size=60), st.sampled_from(LICENCES))
@settings(max_examples=60, deadline=None)
def test_text_marking_is_idempotent_and_keeps_the_words(parts: list[str], licence: str) -> None:
    text = " ".join(parts)
    once = mark_text(text, key=KEYS[licence])
    assert mark_text(once, key=KEYS[licence]) == once
    assert _plain(once) == _plain(text)


@given(st.lists(words, min_size=1, max_size=80))
@settings(max_examples=60, deadline=None)
def test_unmarked_text_is_never_attributed(parts: list[str]) -> None:
    assert detect_text(" ".join(parts), KEYS).licence_id is None


# --- order and shards -----------------------------------------------------------------

ITEMS = [f"ast_{i:03d}" for i in range(300)]


def test_a_leaked_subset_in_delivery_order_points_to_its_licence() -> None:
    orders = {licence: licence_order(ITEMS, key=key) for licence, key in KEYS.items()}
    assert all(sorted(order) == sorted(ITEMS) for order in orders.values())
    assert len({tuple(order) for order in orders.values()}) == 4
    leaked = orders[LICENCES[1]][40:60]
    found = subset_evidence(leaked, orders)
    assert found.licence_id == LICENCES[1]
    assert found.details["per_candidate"][LICENCES[1]]["inversions"] == 0
    # Re-sorted by id (the documented limit): the order says nothing any more.
    assert subset_evidence(sorted(leaked), orders).licence_id is None


def test_a_few_swaps_still_point_to_the_licence_and_foreign_items_are_counted() -> None:
    orders = {licence: licence_order(ITEMS, key=key) for licence, key in KEYS.items()}
    leaked = list(orders[LICENCES[3]][:40])
    leaked[3], leaked[4] = leaked[4], leaked[3]
    leaked[20], leaked[25] = leaked[25], leaked[20]
    found = subset_evidence([*leaked, "ast_not_delivered"], orders)
    assert found.licence_id == LICENCES[3]
    assert found.details["per_candidate"][LICENCES[3]]["items_not_delivered"] == 1


@pytest.mark.parametrize("count", [2, 3, 4, 5, 6])
def test_order_p_value_is_exact_against_every_permutation(count: int) -> None:
    permutations = list(itertools.permutations(range(count)))
    for observed in range(count * (count - 1) // 2 + 1):
        expected = sum(_inversions(p) <= observed for p in permutations) / len(permutations)
        assert _order_p_value(count, observed) == pytest.approx(expected)


@given(st.permutations(list(range(12))))
def test_inversions_match_the_pairwise_count(permutation: list[int]) -> None:
    pairs = sum(a > b for a, b in itertools.combinations(permutation, 2))
    assert _inversions(permutation) == pairs


def test_large_subsets_use_the_normal_approximation() -> None:
    assert _order_p_value(1000, 0) < 1e-100
    assert _order_p_value(1000, 1000 * 999 // 4) == pytest.approx(0.5, abs=0.01)


def test_audio_file_written_and_read_back_keeps_the_mark(
    speech: tuple[np.ndarray, int], tmp_path: Path
) -> None:
    samples, rate = speech
    path = tmp_path / "marked.flac"
    soundfile.write(str(path), mark_audio(samples, rate, key=KEYS[LICENCES[0]]), rate)
    read, read_rate = soundfile.read(str(path), dtype="float32")
    assert detect_audio(read, read_rate, KEYS).licence_id == LICENCES[0]
