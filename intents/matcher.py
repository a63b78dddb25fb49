"""Keyword and pattern matching over three views of a message (surface, normalized, reading)."""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from itertools import accumulate

from intents.literals import GateIndex, KeyScan, gate_of
from intents.normalize import fold, fold_with_offsets, kana_key, normalize
from intents.rules import KeywordRule, PatternRule, topic_rules
from intents.tokenizer import reading_of, tokenize
from intents.types import Analysis

_LATIN = re.compile(r"[a-z0-9]")
_KANA_WORD = re.compile("[\u30a1-\u30faー]+")
# Pure symbols and spaces add nothing to the token-concatenated views.
_SKIP_POS = frozenset({"空白"})


@dataclass(frozen=True, slots=True)
class Hit:
    """One rule matching one span of the normalised text."""

    kind: str
    label: str
    rule: str
    start: int  # offsets into Analysis.text
    end: int
    weight: float
    fuzzy: bool = False
    mask: bool = False


@dataclass(frozen=True, slots=True)
class _TokenView:
    """Folded token strings joined, with where each token's part starts."""

    text: str
    part_starts: tuple[int, ...]  # increasing: the character position of each part
    part_tokens: tuple[int, ...]  # the token index of each part
    starts: frozenset[int]  # character positions where a token starts
    ends: frozenset[int]  # character positions just after a token ends


@dataclass(frozen=True, slots=True)
class Views:
    """The views every matcher reads, built once per message."""

    analysis: Analysis
    surface: str  # fold(text)
    surface_offsets: tuple[int, ...]
    surface_kana: str  # hiragana form of surface, for cue patterns
    norm: _TokenView
    reading: _TokenView
    reading_kana: str

    def surface_span(self, i: int, j: int) -> tuple[int, int]:
        """Map a span of the folded surface to the normalised text."""
        off = self.surface_offsets
        return off[i], off[j - 1] + 1

    def token_span(self, view: _TokenView, i: int, j: int) -> tuple[int, int]:
        """Map a span of a token view to the normalised text."""
        tokens = self.analysis.tokens
        first = view.part_tokens[bisect_right(view.part_starts, i) - 1]
        last = view.part_tokens[bisect_right(view.part_starts, j - 1) - 1]
        return tokens[first].start, tokens[last].end


def _token_view(parts: Iterable[tuple[int, str]]) -> _TokenView:
    """Join token strings and fold them (once for the whole string when lengths allow)."""
    index: list[int] = []
    strings: list[str] = []
    for i, p in parts:
        if p and p != " ":
            index.append(i)
            strings.append(p)
    return _view(index, strings)


def _view(index: list[int], strings: list[str]) -> _TokenView:
    joined = "".join(strings)
    folded = fold(joined)
    if len(folded) != len(joined):  # rare: a token with spaces or multi-char lower-casing
        pairs = [(i, f) for i, f in zip(index, map(fold, strings), strict=True) if f]
        index = [i for i, _ in pairs]
        strings = [f for _, f in pairs]
        folded = "".join(strings)
    ends = list(accumulate(map(len, strings)))
    starts = [0, *ends[:-1]] if ends else []
    return _TokenView(folded, tuple(starts), tuple(index), frozenset(starts), frozenset(ends))


def build_views(analysis: Analysis) -> Views:
    """Prepare the matching views of an analysed message.

    Args:
        analysis: output of :func:`intents.tokenizer.analyse`.

    Returns:
        The folded surface with offsets, the normalized-form view and the reading view.
    """
    surface, offsets = fold_with_offsets(analysis.text, analysis.folded)
    # Both token views in one pass over the tokens.
    n_index: list[int] = []
    n_strings: list[str] = []
    r_index: list[int] = []
    r_strings: list[str] = []
    for i, t in enumerate(analysis.tokens):
        if t.pos[0] in _SKIP_POS:
            continue
        normalized, kana = t.normalized, t.kana
        if normalized and normalized != " ":
            n_index.append(i)
            n_strings.append(normalized)
        if kana and kana != " ":
            r_index.append(i)
            r_strings.append(kana)
    norm = _view(n_index, n_strings)
    reading = _view(r_index, r_strings)
    return Views(
        analysis=analysis,
        surface=surface,
        surface_offsets=offsets,
        surface_kana=kana_key(surface),
        norm=norm,
        reading=reading,
        reading_kana=kana_key(reading.text),
    )


@dataclass(frozen=True, slots=True)
class _Entry:
    key: str
    rule: KeywordRule
    latin: bool


def _literal_index(entries: Sequence[_Entry]) -> KeyScan[_Entry]:
    # Order at one position as the earlier per-character scan gave it: one-character keys
    # first, then longer ones, each in rule order (evidence order depends on it).
    return KeyScan((e.key, n + (len(e.key) > 1) * len(entries), e) for n, e in enumerate(entries))


@dataclass(frozen=True, slots=True)
class CompiledKeywords:
    """Keyword rules indexed once per process for each view."""

    surface: KeyScan[_Entry]
    norm: KeyScan[_Entry]
    reading: KeyScan[_Entry]
    rules: tuple[KeywordRule, ...]


def _keys(word: str) -> tuple[str, str, str]:
    """The folded surface, normalized-form and reading keys of a keyword."""
    text = normalize(word)
    tokens = [t for t in tokenize(text) if t.pos[0] not in _SKIP_POS]
    norm = "".join(fold(t.normalized) for t in tokens)
    reading = "".join(fold(reading_of(t)) for t in tokens)
    return fold(text), norm, reading


@lru_cache(maxsize=1)
def compiled_keywords() -> CompiledKeywords:
    """Compile the topic keywords for the three views (once per process).

    Returns:
        The literal indexes.
    """
    rules = topic_rules().keywords
    surface: list[_Entry] = []
    norm: list[_Entry] = []
    reading: list[_Entry] = []
    for r in rules:
        s, n, rd = _keys(r.text)
        latin = bool(_LATIN.search(s)) and s.isascii()
        kana = bool(_KANA_WORD.fullmatch(s))
        if kana and len(s) <= 3 and not r.aligned:  # どなる must not match inside どうなる
            r = replace(r, aligned=True)
        surface.append(_Entry(s, r, latin))
        # Normalized forms help kanji words (万引 → 万引き, 盗んだ → 盗む); for kana words
        # Sudachi's guesses (ど → どう) do more harm than good.
        if n and not latin and not kana and not _other_word(s, n):
            norm.append(_Entry(n, r, latin))
        # A reading of one or two kana is too ambiguous (物 → ブツ, 鮭 → サケ): short kana
        # words are written as kana keywords instead. Token alignment keeps the rest honest.
        if rd and len(rd) >= 3 and not latin and not r.aligned:
            reading.append(_Entry(rd, r, latin))
    return CompiledKeywords(
        _literal_index(surface), _literal_index(norm), _literal_index(reading), tuple(rules)
    )


def _other_word(key: str, normalized: str) -> bool:
    """A normalized form in other kanji is another, commoner word (盗る → 取る)."""
    own = {c for c in key if _is_kanji(c)}
    other = {c for c in normalized if _is_kanji(c)}
    return bool(own and other and not own & other)


def _latin_ok(text: str, i: int, j: int) -> bool:
    """A Latin keyword (AA, NA) must not touch other Latin letters or digits."""
    return not (i > 0 and text[i - 1].isascii() and text[i - 1].isalnum()) and not (
        j < len(text) and text[j].isascii() and text[j].isalnum()
    )


def _aligned(view: _TokenView, i: int, j: int) -> bool:
    return i in view.starts and j in view.ends


def _surface_aligned(views: Views, i: int, j: int) -> bool:
    """Token alignment for a surface span, checked against the token offsets."""
    start, end = views.surface_span(i, j)
    tokens = views.analysis.tokens
    return any(t.start == start for t in tokens) and any(t.end == end for t in tokens)


def match_keywords(views: Views) -> list[Hit]:
    """Find every topic keyword in the three views.

    Args:
        views: output of :func:`build_views`.

    Returns:
        Hits with spans in the normalised text (one per rule and span).
    """
    ck = compiled_keywords()
    seen: set[tuple[str, int, int]] = set()
    hits: list[Hit] = []

    def add(rule: KeywordRule, span: tuple[int, int]) -> None:
        key = (rule.rule, span[0], span[1])
        if key not in seen:
            seen.add(key)
            hits.append(Hit("topic", rule.label, rule.rule, span[0], span[1], rule.weight))

    for i, j, e in ck.surface.find(views.surface):
        if e.latin and not _latin_ok(views.surface, i, j):
            continue
        if e.rule.aligned and not _surface_aligned(views, i, j):
            continue
        add(e.rule, views.surface_span(i, j))
    for i, j, e in ck.norm.find(views.norm.text):
        if _aligned(views.norm, i, j):
            add(e.rule, views.token_span(views.norm, i, j))
    for i, j, e in ck.reading.find(views.reading.text):
        if _aligned(views.reading, i, j):
            span = views.token_span(views.reading, i, j)
            if not _homophone(views.analysis.text[span[0] : span[1]], e.rule.text):
                add(e.rule, span)
    return hits


def _is_kanji(c: str) -> bool:
    return "\u4e00" <= c <= "\u9fff" or c in "々〆ヶ"


def _homophone(written: str, keyword: str) -> bool:
    """True when a reading match is another word that sounds the same (給食 ≠ 求職).

    The reading view exists for kana spellings (かくせいざい) and kanji slips that keep
    the start of the word (保護士 for 保護司); a span written wholly in kanji that starts
    with another kanji is a different word (傷害 is not 障害).
    """
    if not written or not all(_is_kanji(c) for c in written):
        return False
    return not keyword or written[0] != keyword[0]


@dataclass(frozen=True, slots=True)
class _Compiled:
    """Pattern rules grouped by (kind, label, mask), heaviest first, with literal gates.

    Within a group the patterns run one by one: separate patterns keep the regex engine's
    literal-prefix scan and cost about half of one alternation per label (measured).
    """

    rules: Sequence[PatternRule]
    flat: tuple[PatternRule, ...]  # group after group, each heaviest first
    group_of: tuple[int, ...]  # flat index -> group number
    gates: GateIndex  # over flat indexes
    kana_only: frozenset[int]  # flat indexes also run on the reading


_COMPILED: dict[int, _Compiled] = {}


def _compiled(rules: Sequence[PatternRule]) -> _Compiled:
    """Compile a rule set once (rule sets are loaded once per process)."""
    cached = _COMPILED.get(id(rules))
    if cached is not None and cached.rules is rules:
        return cached
    groups: dict[tuple[str, str, bool], list[PatternRule]] = {}
    for r in rules:
        groups.setdefault((r.kind, r.label, r.mask), []).append(r)
    flat: list[PatternRule] = []
    group_of: list[int] = []
    for g, group in enumerate(groups.values()):
        group.sort(key=lambda r: -r.weight)
        flat.extend(group)
        group_of.extend([g] * len(group))
    compiled = _Compiled(
        rules=rules,
        flat=tuple(flat),
        group_of=tuple(group_of),
        gates=GateIndex([gate_of(r.regex) for r in flat]),
        kana_only=frozenset(i for i, r in enumerate(flat) if r.kana_only),
    )
    if isinstance(rules, tuple):
        _COMPILED[id(rules)] = compiled
    return compiled


def _leftmost(rules: list[PatternRule], text: str) -> list[tuple[int, int, PatternRule]]:
    """Non-overlapping matches of one label, as one alternation would give them.

    At each place the leftmost match wins, the heavier pattern on a tie; the scan then goes
    on after it (overlapping matches of one label would count once anyway).
    """
    found = [
        (m.start(), n, m.end(), r)
        for n, r in enumerate(rules)
        for m in r.regex.finditer(text)
        if m.end() > m.start()
    ]
    if len(found) > 1:
        found.sort(key=lambda f: (f[0], f[1]))
    out: list[tuple[int, int, PatternRule]] = []
    end = -1
    for start, _, stop, r in found:
        if start >= end:
            out.append((start, stop, r))
            end = stop
    return out


def _by_group(compiled: _Compiled, indexes: Iterable[int]) -> list[list[PatternRule]]:
    """The candidate patterns, group by group in rule order."""
    out: list[list[PatternRule]] = []
    last = -1
    for i in sorted(indexes):
        g = compiled.group_of[i]
        if g != last:
            out.append([])
            last = g
        out[-1].append(compiled.flat[i])
    return out


def match_patterns(views: Views, rules: Sequence[PatternRule]) -> list[Hit]:
    """Run pattern rules on the hiragana surface (and kana-only ones on the reading).

    Only patterns whose literal gate passes are run (:mod:`intents.literals`): the others
    cannot match, so the hits are those of running every pattern.

    Args:
        views: output of :func:`build_views`.
        rules: the pattern rules to run.

    Returns:
        Hits with spans in the normalised text.
    """
    hits: list[Hit] = []
    compiled = _compiled(rules)
    surface, reading = views.surface_kana, views.reading_kana
    for group in _by_group(compiled, compiled.gates.candidates(surface)):
        for i, j, r in _leftmost(group, surface):
            span = views.surface_span(i, j)
            hits.append(Hit(r.kind, r.label, r.rule, *span, r.weight, mask=r.mask))
    if reading != surface and compiled.kana_only:
        cands = compiled.gates.candidates(reading) & compiled.kana_only
        for group in _by_group(compiled, cands):
            for i, j, r in _leftmost(group, reading):
                span = views.token_span(views.reading, i, j)
                if not any(h.label == r.label and h.start <= span[0] < h.end for h in hits):
                    hits.append(Hit(r.kind, r.label, r.rule, *span, r.weight, mask=r.mask))
    return hits


def drop_contained(hits: list[Hit]) -> list[Hit]:
    """Drop a hit whose span lies strictly inside a longer keyword hit.

    「飲酒運転」 should not also count as 「飲酒」, nor 「闇バイト」 as 「バイト」.

    Args:
        hits: hits of one kind.

    Returns:
        The hits that are not contained in a longer one.
    """
    ordered = sorted(hits, key=lambda h: (h.start - h.end, -h.weight, h.start))
    kept: list[Hit] = []
    for h in ordered:
        # Only a longer keyword swallows (a pattern may span a whole clause); two keywords
        # of one topic on the same span count once.
        if any(
            ".kw." in k.rule
            and k.start <= h.start
            and h.end <= k.end
            and (
                (k.end - k.start) > (h.end - h.start) or (k.label == h.label and ".kw." in h.rule)
            )
            for k in kept
        ):
            continue
        kept.append(h)
    kept.sort(key=lambda h: (h.start, h.end))
    return kept
