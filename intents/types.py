"""Value types produced by language understanding (the contract other packages rely on)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple


class Token(NamedTuple):
    """One SudachiPy morpheme, reduced to what matching needs.

    Immutable like the other values here, but a NamedTuple: about 30 are built per message
    and a frozen dataclass's ``__init__`` cost a fifth of understand() (measured).
    """

    surface: str
    normalized: str  # Sudachi normalized_form (覚せい剤 → 覚醒剤, 万引 → 万引き)
    dictionary: str  # Sudachi dictionary_form (lemma)
    reading: str  # katakana reading
    pos: tuple[str, ...]
    start: int  # character offsets into Analysis.text
    end: int
    kana: str = ""  # what kana matching reads: the reading, or the surface for symbols,
    # numerals and Latin (see intents.tokenizer.reading_of)


@dataclass(frozen=True, slots=True)
class Analysis:
    """A message prepared once for every matcher: normalised text, folded key, tokens."""

    raw_length: int
    text: str  # normalize(raw): NFKC, no emoji/control chars, collapsed punctuation
    folded: str  # fold(text): the matching key (katakana folded, small kana, long vowels)
    tokens: tuple[Token, ...]
    reading: str  # folded concatenation of token readings, for kana-only input
    truncated: bool = False


@dataclass(frozen=True, slots=True)
class Evidence:
    """Why a decision was made: which rule matched which part of the message."""

    kind: str  # topic | audience | age_group | crisis | area | negation | time
    label: str  # the id it supports, e.g. "theft", "family", "urgent", "13"
    rule: str  # rule id from the YAML, e.g. "theft.kw.万引き"
    matched: str  # the matched span as it appears in the normalised text
    weight: float = 1.0
    fuzzy: bool = False


@dataclass(frozen=True, slots=True)
class TopicScore:
    """A topic id with its accumulated score."""

    topic: str
    score: float


@dataclass(frozen=True, slots=True)
class Area:
    """A place named in the message (JIS X 0401/0402 codes where known)."""

    prefecture: str | None = None  # 東京都
    prefecture_code: str | None = None  # "13"
    municipality: str | None = None  # 新宿区
    municipality_code: str | None = None  # "131041" when the gazetteer has it


@dataclass(frozen=True, slots=True)
class CrisisAssessment:
    """Result of the deterministic crisis check."""

    level: str  # none | concern | urgent
    categories: tuple[str, ...] = ()  # e.g. suicidal, self_harm, harm_to_others, danger_now
    evidence: tuple[Evidence, ...] = ()


@dataclass(frozen=True, slots=True)
class Understanding:
    """Everything triage found in one message."""

    topics: tuple[TopicScore, ...]  # ranked; ("other", 0.0) when nothing matched
    audience: str = "unknown"
    age_group: str = "unknown"
    crisis: str = "none"
    crisis_categories: tuple[str, ...] = ()
    area: Area | None = None
    negated_topics: tuple[str, ...] = ()
    past_topics: tuple[str, ...] = ()  # topics placed in the past (昔, 以前)
    evidence: tuple[Evidence, ...] = field(default=())
    confident: bool = False  # False → the dialogue should confirm before routing
    in_scope: bool = True  # False for clearly unrelated messages (天気, ラーメン)

    @property
    def topic(self) -> str:
        """The primary topic id."""
        return self.topics[0].topic if self.topics else "other"

    @property
    def topic_ids(self) -> tuple[str, ...]:
        """Ranked topic ids."""
        return tuple(t.topic for t in self.topics)
