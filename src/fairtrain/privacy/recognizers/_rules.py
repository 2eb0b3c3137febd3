"""A small regex-rule recogniser that plugs into Presidio's analyzer.

Presidio's own ``PatternRecognizer`` compiles every pattern with the registry's global
flags (case-insensitive), and its context boost looks only at lemmas. Several of our
rules need the opposite: case matters ("Piazza Rezzonico 35" is an address, "windows 10"
is not), and a cue must sit in a window of characters ("plate", "zip") rather than of
lemmas. So these rules carry their own compiled patterns and their own context test,
and still return ordinary ``RecognizerResult`` objects, so Presidio merges them with
everything else.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from presidio_analyzer import EntityRecognizer, RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts

__all__ = ["Rule", "RuleRecognizer"]


@dataclass(frozen=True, slots=True)
class Rule:
    """One pattern and how much to trust what it matches.

    ``score`` applies when ``context`` is absent or found near the match;
    ``bare_score`` applies when a context is set but not found (``None`` drops the match).
    """

    name: str
    pattern: re.Pattern[str]
    score: float
    group: int | str = 0
    context: re.Pattern[str] | None = None
    bare_score: float | None = None
    before: int = 48  # characters of left context searched for the cue
    after: int = 16  # characters of right context searched for the cue
    validate: Callable[[str], bool] | None = None


class RuleRecognizer(EntityRecognizer):
    """Runs a list of :class:`Rule` for one entity type."""

    def __init__(self, entity: str, rules: Sequence[Rule], name: str) -> None:
        self._rules = tuple(rules)
        self._label = name
        super().__init__(supported_entities=[entity], name=name, supported_language="en")

    def load(self) -> None:
        """Nothing to load: patterns are compiled at import."""

    def analyze(
        self,
        text: str,
        entities: list[str],
        nlp_artifacts: NlpArtifacts | None = None,
    ) -> list[RecognizerResult]:
        """Return one result per rule match that passes its checks."""
        entity = self.supported_entities[0]
        if entities and entity not in entities:
            return []
        results: list[RecognizerResult] = []
        for rule in self._rules:
            for match in rule.pattern.finditer(text):
                start, end = match.span(rule.group)
                if start < 0 or end <= start:
                    continue
                if rule.validate is not None and not rule.validate(text[start:end]):
                    continue
                score: float | None = rule.score
                if rule.context is not None:
                    window = (
                        text[max(0, start - rule.before) : start]
                        + " "
                        + text[end : end + rule.after]
                    )
                    if not rule.context.search(window):
                        score = rule.bare_score
                if score is None:
                    continue
                results.append(
                    RecognizerResult(
                        entity_type=entity,
                        start=start,
                        end=end,
                        score=score,
                        recognition_metadata={
                            RecognizerResult.RECOGNIZER_NAME_KEY: self._label,
                            RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id,
                            "rule": rule.name,
                        },
                    )
                )
        return results
