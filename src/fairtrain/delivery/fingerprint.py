"""Per-licence dataset fingerprints for recordings, text and the shape of a delivery.

No robust offline watermark library exists for audio or text, so each licence's copy is
made slightly, unnoticeably different in ways that can be checked later. What each part
survives and what it does not is stated here and measured in docs/watermark.md:

- **Recordings** (:func:`mark_audio`): a keyed noise sequence, one second long and
  repeated, added 21 dB below the recording and shaped to its spectrum frame by frame
  (so it hides under the voice, and is silent in silence). Detection resamples to
  16 kHz, folds modulo one second and correlates at every offset (over the whole band
  and over its telephone part alone), so resampling and trimming do not matter; MP3
  and Opus re-encoding weaken it. Speed or pitch changes,
  time stretching and heavy noise reduction destroy it. It needs a few seconds of
  sound: about 5 s of speech for a confident attribution.
- **Text** (:func:`mark_text`): three channels of meaning-preserving variants, each
  chosen by a keyed hash of the words around it: (1) apostrophes inside words, ASCII
  ``'`` or typographic ``’``; (2) about one inter-word space in sixteen made a
  no-break space (U+00A0); (3) the numbering of redaction placeholders
  (``[PERSON_1]``, ``[PERSON_2]``…) permuted per type. Copying, excerpting and
  reordering keep it; NFKC normalisation or collapsing whitespace removes channel 2,
  quote "straightening" removes channel 1, and any retyping or paraphrase removes all.
- **Canary records** (:func:`canary_texts`): keyed, unique, natural-looking sentences
  for one licence only; finding one is near-certain evidence. The exporter does not add
  them (a fake record in a buyer's training data needs the buyer's agreement); an
  operator who agrees it with a buyer adds them, and ``detect_text`` finds them.
- **Order** (:func:`licence_order`): each licence's delivery has its own sample order
  (its shards are consecutive runs of it); :func:`subset_evidence` tests a leaked subset
  against it, and ``fairtrain trace`` does so for every leak it can place in order (a
  whole shard). Re-sorting or shuffling the leak removes this evidence.

Every detector returns a :class:`~fairtrain.delivery.watermark.Detection` whose p-value
is the chance of the observed agreement for a licence that did not produce the copy.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import av
import numpy as np
from numpy.typing import NDArray

from fairtrain.delivery.watermark import (
    CandidateScore,
    Detection,
    check_key,
    combine_log_p_values,
    decide,
    keyed_seed,
    z_tail,
)
from fairtrain.errors import InvalidInput

__all__ = [
    "AUDIO_MARK_DB",
    "AUDIO_RATE",
    "canary_texts",
    "detect_audio",
    "detect_text",
    "licence_order",
    "mark_audio",
    "mark_text",
    "resample",
    "subset_evidence",
]

AUDIO_METHOD = "audio_spread_spectrum"
TEXT_METHOD = "text_variants"
ORDER_METHOD = "sample_order"

AUDIO_RATE = 16_000  # detection rate; the mark lives in 150–7000 Hz, below its Nyquist
AUDIO_TILE_SECONDS = 1
AUDIO_BAND = (150.0, 7000.0)
# Telephone-band copies (8 kHz) and low-bitrate Opus keep only the lower part: detection
# also scores that part alone, so the lost upper bins do not dilute the evidence.
_DETECTION_TOPS = (7000.0, 3800.0)
AUDIO_MARK_DB = -21.0  # mark level relative to the recording, per time-frequency cell
_FRAME = 1024
_HOP = _FRAME // 2
# Detection divides the signal by its 20 ms envelope so loud syllables do not drown the
# quiet ones' share of the mark; the floor keeps silence from being amplified.
_ENVELOPE_SAMPLES = 320
_ENVELOPE_FLOOR = 0.1

NBSP = "\u00a0"
TYPOGRAPHIC_APOSTROPHE = "\u2019"
NBSP_ONE_IN = 16
CANARIES_CHECKED = 16

Float32Array = NDArray[np.float32]
Float64Array = NDArray[np.float64]


def _digest(key: bytes, *parts: str) -> bytes:
    check_key(key)
    return hmac.new(key, "\x1f".join(parts).encode("utf-8"), hashlib.sha256).digest()


def _keyed_int(key: bytes, *parts: str) -> int:
    return int.from_bytes(_digest(key, *parts)[:8], "big")


# --- statistics -----------------------------------------------------------------------


def _log_binomial_tail(successes: int, trials: int, p: float) -> float:
    """log P(Binomial(trials, p) ≥ successes)."""
    if successes <= 0:
        return 0.0
    if successes > trials:
        return -math.inf
    terms = [
        math.lgamma(trials + 1)
        - math.lgamma(i + 1)
        - math.lgamma(trials - i + 1)
        + i * math.log(p)
        + (trials - i) * math.log1p(-p)
        for i in range(successes, trials + 1)
    ]
    top = max(terms)
    return top + math.log(sum(math.exp(t - top) for t in terms))


# --- recordings -----------------------------------------------------------------------


def _audio_spectrum(key: bytes) -> NDArray[np.complex128]:
    """The licence's one-second sequence as unit-magnitude phases on 1 Hz bins."""
    rng = np.random.default_rng(keyed_seed(key, b"fairtrain/audio-fingerprint/v1"))
    bins = AUDIO_RATE * AUDIO_TILE_SECONDS // 2 + 1
    frequencies = np.arange(bins) / AUDIO_TILE_SECONDS
    band = (frequencies >= AUDIO_BAND[0]) & (frequencies <= AUDIO_BAND[1])
    return np.asarray(np.exp(2j * np.pi * rng.random(bins)) * band, dtype=np.complex128)


def _sequence(key: bytes, rate: int, length: int) -> Float64Array:
    """The sequence synthesised directly at ``rate`` (exact band-limited resampling)."""
    spectrum = _audio_spectrum(key)
    period = rate * AUDIO_TILE_SECONDS
    full = np.zeros(period // 2 + 1, dtype=np.complex128)
    shared = min(full.size, spectrum.size)
    full[:shared] = spectrum[:shared]
    tile = np.fft.irfft(full, period)
    tile /= max(float(tile.std()), 1e-12)
    return np.asarray(np.tile(tile, length // period + 1)[:length], dtype=np.float64)


def _window() -> Float64Array:
    # sqrt-Hann at 50 % overlap sums to one in power: analysis + synthesis reconstruct.
    return np.asarray(np.sqrt(np.hanning(_FRAME + 1)[:-1]), dtype=np.float64)


def _stft(signal: Float64Array) -> NDArray[np.complex128]:
    padded = np.concatenate([np.zeros(_FRAME), signal, np.zeros(_FRAME + _HOP)])
    frames = np.lib.stride_tricks.sliding_window_view(padded, _FRAME)[::_HOP]
    return np.asarray(np.fft.rfft(frames * _window(), axis=1), dtype=np.complex128)


def _istft(spectra: NDArray[np.complex128], length: int) -> Float64Array:
    window = _window()
    frames = np.fft.irfft(spectra, _FRAME, axis=1) * window
    count = frames.shape[0]
    out = np.zeros((count + 1) * _HOP + _FRAME, dtype=np.float64)
    norm = np.zeros_like(out)
    # Hop is half a frame: even frames tile the signal, and odd ones tile it half a frame on.
    for parity in (0, 1):
        chosen = frames[parity::2]
        start = parity * _HOP
        out[start : start + chosen.size] += chosen.reshape(-1)
        norm[start : start + chosen.size] += np.tile(window * window, chosen.shape[0])
    return np.asarray(
        out[_FRAME : _FRAME + length] / np.maximum(norm[_FRAME : _FRAME + length], 1e-9)
    )


def _mark_channel(channel: Float64Array, rate: int, key: bytes) -> Float64Array:
    host = _stft(channel)
    pattern = _stft(_sequence(key, rate, channel.size))
    level = 10 ** (AUDIO_MARK_DB / 20)
    shaped = level * np.abs(host) * pattern / np.maximum(np.abs(pattern), 1e-12)
    return _istft(shaped, channel.size)


def mark_audio(samples: Float32Array, rate: int, *, key: bytes) -> Float32Array:
    """The recording (float samples in [-1, 1], shape (n,) or (channels, n)) with the
    licence's fingerprint added to every channel."""
    check_key(key)
    if rate < 8_000 or samples.ndim not in (1, 2):
        raise InvalidInput(
            "A recording to fingerprint needs a sample rate of at least 8 kHz and "
            "one or more channels of samples.",
            code="fingerprint_bad_audio",
        )
    channels = samples.reshape(1, -1) if samples.ndim == 1 else samples
    marked = np.stack(
        [c + _mark_channel(c.astype(np.float64), rate, key) for c in channels.astype(np.float64)]
    )
    clipped = np.asarray(np.clip(marked, -1.0, 1.0), dtype=np.float32)
    return clipped.reshape(samples.shape)


def resample(samples: Float32Array, rate: int, target: int = AUDIO_RATE) -> Float32Array:
    """Mono float samples at ``target`` Hz, through FFmpeg's resampler."""
    mono = samples if samples.ndim == 1 else samples.mean(axis=0)
    mono = np.ascontiguousarray(mono, dtype=np.float32)
    if rate == target or mono.size == 0:
        return mono
    frame = av.AudioFrame.from_ndarray(mono.reshape(1, -1), format="flt", layout="mono")
    frame.sample_rate = rate
    resampler = av.AudioResampler(format="flt", layout="mono", rate=target)
    pieces = [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
    pieces += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    return np.ascontiguousarray(np.concatenate(pieces), dtype=np.float32)


def _moving_rms(signal: Float64Array, width: int) -> Float64Array:
    cumulative = np.concatenate([[0.0], np.cumsum(signal * signal)])
    index = np.arange(signal.size)
    low = np.clip(index - width // 2, 0, signal.size)
    high = np.clip(index + width - width // 2, 0, signal.size)
    mean = (cumulative[high] - cumulative[low]) / np.maximum(high - low, 1)
    return np.asarray(np.sqrt(np.maximum(mean, 0.0)), dtype=np.float64)


def detect_audio(samples: Float32Array, rate: int, candidates: Mapping[str, bytes]) -> Detection:
    """Which candidate's fingerprint a recording carries (any rate, any channels)."""
    for key in candidates.values():
        check_key(key)
    mono = resample(samples, rate).astype(np.float64)
    period = AUDIO_RATE * AUDIO_TILE_SECONDS
    details = {"seconds": round(mono.size / AUDIO_RATE, 2)}
    if mono.size < period or not np.any(mono):
        return decide(AUDIO_METHOD, [], details=details | {"reason": "too_short_or_silent"})
    envelope = _moving_rms(mono, _ENVELOPE_SAMPLES)
    overall = float(np.sqrt(np.mean(mono * mono)))
    levelled = mono / (envelope + _ENVELOPE_FLOOR * overall)
    folded = np.bincount(np.arange(mono.size) % period, weights=levelled, minlength=period)
    spectrum = np.fft.rfft(folded)
    whitened = spectrum / np.maximum(np.abs(spectrum), 1e-12)
    frequencies = np.arange(whitened.size) / AUDIO_TILE_SECONDS
    scores = []
    for licence_id, key in candidates.items():
        pattern = np.conj(_audio_spectrum(key))
        best = 0.0
        for top in _DETECTION_TOPS:
            surface = np.fft.irfft(whitened * pattern * (frequencies <= top), period)
            spread = float(surface.std())
            if spread > 0:
                best = max(best, float((surface.max() - surface.mean()) / spread))
        scores.append(CandidateScore(licence_id, best, z_tail(best, period * len(_DETECTION_TOPS))))
    return decide(AUDIO_METHOD, scores, details=details)


# --- text -----------------------------------------------------------------------------

_APOSTROPHE = re.compile(r"(?<=\w)['\u2019](?=\w)")
_SPACE = re.compile(r"(?<=\S)[ \u00a0](?=\S)")
_PLACEHOLDER = re.compile(r"\[([A-Z][A-Z_]*?)_(\d+)\]")
_WORD = re.compile(r"\w+")
_DIGIT = re.compile(r"\d")


def _context_words(text: str, start: int, end: int) -> tuple[str, str]:
    """The words just before ``start`` and just after ``end``, folded so the mark's own
    variants do not change them."""
    before = _WORD.findall(text[max(0, start - 40) : start])
    after = _WORD.findall(text[end : end + 40])
    return (_fold_word(before[-1]) if before else "", _fold_word(after[0]) if after else "")


def _fold_word(word: str) -> str:
    # Digits are folded so renumbering a placeholder ([PERSON_2]) keeps its neighbours'.
    return _DIGIT.sub("#", word.lower())


def _apostrophe_context(text: str, match: re.Match[str]) -> str:
    before, after = _context_words(text, match.start(), match.end())
    previous = _WORD.findall(text[max(0, match.start() - 60) : match.start()])
    earlier = _fold_word(previous[-2]) if len(previous) >= 2 else ""
    return f"{earlier} {before}'{after}"


def _space_context(text: str, match: re.Match[str]) -> str:
    before, after = _context_words(text, match.start(), match.end())
    return f"{before} {after}"


def _wants_typographic(key: bytes, context: str) -> bool:
    return _keyed_int(key, "apostrophe", context) % 2 == 1


def _wants_nbsp(key: bytes, context: str) -> bool:
    return _keyed_int(key, "space", context) % NBSP_ONE_IN == 0


def _placeholder_permutation(key: bytes, entity: str, count: int) -> list[int]:
    rng = np.random.default_rng(int.from_bytes(_digest(key, "placeholders", entity, str(count))))
    return [int(n) + 1 for n in rng.permutation(count)]


def _placeholder_groups(text: str) -> dict[str, list[int]]:
    """Per entity type, its placeholder numbers in order of first appearance."""
    groups: dict[str, list[int]] = {}
    for match in _PLACEHOLDER.finditer(text):
        numbers = groups.setdefault(match.group(1), [])
        number = int(match.group(2))
        if number not in numbers:
            numbers.append(number)
    return groups


def mark_text(text: str, *, key: bytes) -> str:
    """The text with the licence's variants chosen; its words and meaning unchanged."""
    check_key(key)
    text = _APOSTROPHE.sub(
        lambda m: (
            TYPOGRAPHIC_APOSTROPHE if _wants_typographic(key, _apostrophe_context(text, m)) else "'"
        ),
        text,
    )
    text = _SPACE.sub(
        lambda m: NBSP if _wants_nbsp(key, _space_context(text, m)) else m.group(0),
        text,
    )
    renumbering: dict[str, dict[int, int]] = {}
    for entity, numbers in _placeholder_groups(text).items():
        # Only a document numbered 1..n by first mention (as redaction writes it).
        if len(numbers) >= 2 and numbers == list(range(1, len(numbers) + 1)):
            permutation = _placeholder_permutation(key, entity, len(numbers))
            renumbering[entity] = dict(zip(numbers, permutation, strict=True))

    def renumber(match: re.Match[str]) -> str:
        mapping = renumbering.get(match.group(1))
        if mapping is None:
            return match.group(0)
        return f"[{match.group(1)}_{mapping[int(match.group(2))]}]"

    return _PLACEHOLDER.sub(renumber, text)


@dataclass(frozen=True, slots=True)
class _TextObservations:
    """What a suspect text shows, each distinct context counted once."""

    apostrophes: dict[str, bool]  # context -> typographic?
    nbsp_contexts: set[str]
    space_contexts: set[str]
    placeholders: dict[str, list[int]]
    folded: str


def _observe(text: str) -> _TextObservations:
    apostrophes: dict[str, bool] = {}
    votes: dict[str, set[bool]] = {}
    for match in _APOSTROPHE.finditer(text):
        votes.setdefault(_apostrophe_context(text, match), set()).add(
            match.group(0) == TYPOGRAPHIC_APOSTROPHE
        )
    for context, seen in votes.items():
        if len(seen) == 1:  # both forms for one context: it says nothing
            apostrophes[context] = seen.pop()
    nbsp: set[str] = set()
    spaces: set[str] = set()
    for match in _SPACE.finditer(text):
        (nbsp if match.group(0) == NBSP else spaces).add(_space_context(text, match))
    return _TextObservations(
        apostrophes=apostrophes,
        nbsp_contexts=nbsp,
        space_contexts=spaces - nbsp,
        placeholders=_placeholder_groups(text),
        folded=" ".join(text.split()).lower(),
    )


def _text_score(
    seen: _TextObservations, licence_id: str, key: bytes
) -> tuple[CandidateScore, dict[str, int]]:
    log_p: list[float] = []
    matched = sum(_wants_typographic(key, c) == t for c, t in seen.apostrophes.items())
    if seen.apostrophes:
        log_p.append(_log_binomial_tail(matched, len(seen.apostrophes), 0.5))
    nbsp_matched = sum(_wants_nbsp(key, c) for c in seen.nbsp_contexts)
    if seen.nbsp_contexts:
        log_p.append(_log_binomial_tail(nbsp_matched, len(seen.nbsp_contexts), 1 / NBSP_ONE_IN))
    placeholder_matched = 0
    for entity, numbers in seen.placeholders.items():
        if len(numbers) < 2 or sorted(numbers) != list(range(1, len(numbers) + 1)):
            continue
        if numbers == _placeholder_permutation(key, entity, len(numbers)):
            placeholder_matched += 1
            log_p.append(-math.lgamma(len(numbers) + 1))  # log(1/n!)
        else:
            log_p.append(0.0)
    canaries = sum(
        " ".join(c.split()).lower() in seen.folded for c in canary_texts(key, CANARIES_CHECKED)
    )
    p_value = combine_log_p_values(log_p)
    if canaries:
        # A 12-word canary drawn from 64**12 sentences does not occur by chance.
        p_value = min(p_value, CANARIES_CHECKED * 64.0**-12)
    z = -math.log10(p_value)
    counts = {
        "apostrophes_matched": matched,
        "nbsp_matched": nbsp_matched,
        "placeholder_groups_matched": placeholder_matched,
        "canaries_found": canaries,
    }
    return CandidateScore(licence_id, z, p_value), counts


def detect_text(text: str, candidates: Mapping[str, bytes]) -> Detection:
    """Which candidate's variants a text shows.

    The score reported as ``z`` for text is −log10 of the candidate's p-value (Fisher's
    combination of the channels), since the channels are counts, not correlations.
    """
    for key in candidates.values():
        check_key(key)
    seen = _observe(text)
    scores = []
    per_candidate: dict[str, dict[str, int]] = {}
    for licence_id, key in candidates.items():
        score, counts = _text_score(seen, licence_id, key)
        scores.append(score)
        per_candidate[licence_id] = counts
    details = {
        "apostrophe_contexts": len(seen.apostrophes),
        "nbsp_contexts": len(seen.nbsp_contexts),
        "placeholder_groups": sum(len(n) >= 2 for n in seen.placeholders.values()),
        "per_candidate": per_candidate,
    }
    return decide(TEXT_METHOD, scores, details=details)


_CANARY_WORDS = (
    "amber", "harbour", "quiet", "lantern", "copper", "meadow", "violet", "north",
    "silver", "orchard", "gentle", "river", "marble", "autumn", "cedar", "distant",
    "falcon", "garden", "hollow", "island", "juniper", "kettle", "linen", "morning",
    "nectar", "ochre", "pebble", "quarry", "raven", "saffron", "timber", "umber",
    "velvet", "willow", "yonder", "zephyr", "basalt", "candle", "delta", "ember",
    "fennel", "granite", "heron", "indigo", "jasmine", "kestrel", "lagoon", "mist",
    "nutmeg", "olive", "pine", "quill", "rosemary", "slate", "thistle", "upland",
    "valley", "walnut", "yarrow", "azure", "birch", "clover", "dune", "elm",
)  # fmt: skip


def canary_texts(key: bytes, count: int) -> list[str]:
    """``count`` keyed canary sentences for one licence's delivery (12 words each from a
    64-word list: 72 bits), different for every licence and every index."""
    check_key(key)
    sentences = []
    for index in range(count):
        digest = _digest(key, "canary", str(index))
        words = [_CANARY_WORDS[b % len(_CANARY_WORDS)] for b in digest[:12]]
        sentences.append(" ".join(words).capitalize() + ".")
    return sentences


# --- order and shards -----------------------------------------------------------------


def licence_order(item_ids: Sequence[str], *, key: bytes) -> list[str]:
    """The items in this licence's own order (sorted by a keyed hash of each id)."""
    check_key(key)
    return sorted(item_ids, key=lambda item: _digest(key, "order", item))


def _inversions(ranks: Sequence[int]) -> int:
    """Pairs out of order, by merge sort (O(n log n))."""

    def sort(values: list[int]) -> tuple[list[int], int]:
        if len(values) <= 1:
            return values, 0
        middle = len(values) // 2
        left, a = sort(values[:middle])
        right, b = sort(values[middle:])
        merged: list[int] = []
        count = a + b
        i = j = 0
        while i < len(left) and j < len(right):
            if left[i] <= right[j]:
                merged.append(left[i])
                i += 1
            else:
                merged.append(right[j])
                count += len(left) - i
                j += 1
        merged.extend(left[i:])
        merged.extend(right[j:])
        return merged, count

    return sort(list(ranks))[1]


_EXACT_ORDER_LIMIT = 400


def _order_p_value(count: int, inversions: int) -> float:
    """P(a uniformly random order of ``count`` items has ≤ ``inversions`` inversions)."""
    if count < 2:
        return 1.0
    if count <= _EXACT_ORDER_LIMIT:
        # Mahonian distribution, one item at a time: convolve with uniform{0..i}.
        limit = inversions + 1
        dist = np.zeros(limit)
        dist[0] = 1.0
        for i in range(1, count):
            cumulative = np.concatenate([[0.0], np.cumsum(dist)])
            window = cumulative[1:] - cumulative[np.maximum(np.arange(limit) - i, 0)]
            dist = window / (i + 1)
        return max(min(1.0, float(dist.sum())), 1e-300)
    mean = count * (count - 1) / 4
    spread = math.sqrt(count * (count - 1) * (2 * count + 5) / 72)
    return z_tail((mean - inversions) / spread)


def subset_evidence(
    keys_in_leak: Sequence[str], candidates_orders: Mapping[str, Sequence[str]]
) -> Detection:
    """Does a leaked subset keep one licence's sample order?

    ``keys_in_leak`` are the items' ids (or content hashes) in the order the leak holds
    them; ``candidates_orders`` each candidate licence's delivered order. Under "this
    candidate did not produce the leak", the leaked items sit in that candidate's order
    as a random permutation, so the p-value is the chance of as few inversions. Items a
    candidate never received are left out and counted in ``details``.
    """
    scores = []
    details: dict[str, dict[str, int]] = {}
    for licence_id, order in candidates_orders.items():
        rank = {item: position for position, item in enumerate(order)}
        ranks = [rank[item] for item in keys_in_leak if item in rank]
        inversions = _inversions(ranks)
        p_value = _order_p_value(len(ranks), inversions)
        scores.append(CandidateScore(licence_id, -math.log10(p_value), p_value))
        details[licence_id] = {
            "items_compared": len(ranks),
            "items_not_delivered": len(keys_in_leak) - len(ranks),
            "inversions": inversions,
        }
    return decide(ORDER_METHOD, scores, details={"per_candidate": details})
