"""Literal prefilters: what text a regular expression cannot match without, found in one scan.

Most rule patterns match no given message, yet running each one costs a scan of the text
(the long alternations of roles and relatives cost several microseconds each, measured).
For every pattern we derive, from its parse tree, sets of strings such that any match must
contain one string of each set; one Aho-Corasick pass over the message then tells which
patterns can be skipped without running them. The gate is a necessary condition only: a
pattern that passes it is still run, so results are the same as running every pattern.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Generic, TypeVar

import ahocorasick

try:  # the parser moved in 3.11; the tree it builds is the one sre has always used
    from re import _constants as _c
    from re import _parser as _p
except ImportError:  # pragma: no cover - older Pythons are not supported anyway
    import sre_constants as _c  # type: ignore[no-redef]
    import sre_parse as _p  # type: ignore[no-redef]

# Strings per finite language before we stop expanding it (keeps the automaton small).
_CAP = 256
# Strings in a set that unites the alternatives of a long alternation (one per alternative,
# so a crisis rule's hundred phrasings still get a gate).
_UNION_CAP = 4096
# Sets kept per pattern: the most selective ones; more would cost checks and gain little.
_MAX_SETS = 3
_REPEATS = {_c.MAX_REPEAT, _c.MIN_REPEAT, getattr(_c, "POSSESSIVE_REPEAT", _c.MAX_REPEAT)}
_ZERO_WIDTH = {_c.AT, _c.ASSERT, _c.ASSERT_NOT}

T = TypeVar("T")
Gate = tuple[frozenset[str], ...]  # each set: some string of it occurs in any match


class _Unsupported(Exception):
    """A construct whose literals cannot be read safely (case-insensitive parts)."""


def _product(a: set[str] | None, b: set[str] | None) -> set[str] | None:
    if a is None or b is None or len(a) * len(b) > _CAP:
        return None
    return {x + y for x in a for y in b}


def _seq_lang(items: Sequence[tuple[object, object]]) -> set[str] | None:
    """Every string a sequence can match, when that is a small finite set."""
    lang: set[str] | None = {""}
    for op, av in items:
        lang = _product(lang, _item_lang(op, av))
        if lang is None:
            return None
    return lang


def _item_lang(op: object, av: object) -> set[str] | None:
    if op is _c.LITERAL:
        return {chr(av)}  # type: ignore[arg-type]
    if op in _ZERO_WIDTH:
        return {""}
    if op is _c.IN:
        chars: set[str] = set()
        for kind, value in av:  # type: ignore[attr-defined]
            if kind is _c.LITERAL:
                chars.add(chr(value))
            elif kind is _c.RANGE and value[1] - value[0] < 32:
                chars.update(chr(c) for c in range(value[0], value[1] + 1))
            else:  # NEGATE, CATEGORY, wide ranges
                return None
        return chars
    if op is _c.SUBPATTERN:
        _, add_flags, _, inner = av  # type: ignore[misc]
        if add_flags & _c.SRE_FLAG_IGNORECASE:
            raise _Unsupported
        return _seq_lang(inner)
    if op is _c.BRANCH:
        out: set[str] = set()
        for alt in av[1]:  # type: ignore[index]
            lang = _seq_lang(alt)
            if lang is None:
                return None
            out |= lang
            if len(out) > _CAP:
                return None
        return out
    if op in _REPEATS:
        lo, hi, inner = av  # type: ignore[misc]
        if hi > 3:
            return None
        base = _seq_lang(inner)
        out = set()
        power: set[str] | None = {""}
        for k in range(hi + 1):
            if k >= lo:
                out |= power  # type: ignore[arg-type]
            power = _product(power, base)
            if power is None and k < hi:
                return None
        return out if len(out) <= _CAP else None
    return None


def _best(sets: Iterable[frozenset[str]]) -> list[frozenset[str]]:
    """Most selective first: longer shortest string, then fewer strings."""
    return sorted(sets, key=lambda s: (-min(len(x) for x in s), len(s)))


def _seq_gate(items: Sequence[tuple[object, object]]) -> list[frozenset[str]]:
    """Sets a match of the sequence needs, one per stretch of finite parts."""
    sets: list[frozenset[str]] = []
    stretch: set[str] = {""}

    def flush() -> None:
        if "" not in stretch:
            sets.append(frozenset(stretch))

    for op, av in items:
        lang = _item_lang(op, av)
        joined = _product(stretch, lang)
        if joined is not None:
            stretch = joined
            continue
        flush()
        if lang is not None:  # finite but too many combinations: start a new stretch
            stretch = lang
            continue
        stretch = {""}
        sets.extend(_item_gate(op, av))
    flush()
    return sets


def _item_gate(op: object, av: object) -> list[frozenset[str]]:
    if op is _c.SUBPATTERN:  # case-insensitive groups were refused by _item_lang first
        return _seq_gate(av[3])  # type: ignore[index]
    if op is getattr(_c, "ATOMIC_GROUP", None):
        return _seq_gate(av)  # type: ignore[arg-type]
    if op in _REPEATS:
        lo, _, inner = av  # type: ignore[misc]
        return _seq_gate(inner) if lo >= 1 else []
    if op is _c.BRANCH:
        union: set[str] = set()
        for alt in av[1]:  # type: ignore[index]
            alt_sets = _seq_gate(alt)
            if not alt_sets:
                return []  # this alternative needs no literal at all
            union |= _best(alt_sets)[0]
        return [frozenset(union)] if len(union) <= _UNION_CAP else []
    return []


def _minimal(strings: frozenset[str]) -> frozenset[str]:
    """Drop strings that contain another member: finding the shorter one is enough."""
    ordered = sorted(strings, key=len)
    kept: list[str] = []
    for x in ordered:
        if not any(k in x for k in kept):
            kept.append(x)
    return frozenset(kept)


def gate_of(pattern: re.Pattern[str]) -> Gate:
    """The literal sets a match of ``pattern`` needs; ``()`` when none can be read.

    Args:
        pattern: a compiled pattern without case-insensitive matching.

    Returns:
        At most three sets of strings, most selective first; every match contains a
        string of each set. Sets of single characters are kept only when nothing better
        is known (「が」 or 「、」 occur in nearly every message).
    """
    if pattern.flags & re.IGNORECASE:
        return ()
    try:
        tree = _p.parse(pattern.pattern, pattern.flags)
        sets = {_minimal(s) for s in _seq_gate(list(tree))}
    except (_Unsupported, re.error, RecursionError, TypeError, ValueError):
        return ()
    ranked = _best(sets)
    if ranked and min(len(x) for x in ranked[0]) > 1:
        ranked = [s for s in ranked if min(len(x) for x in s) > 1]
    return tuple(ranked[:_MAX_SETS])


def _automaton(words: dict[str, object]) -> ahocorasick.Automaton | None:
    """An Aho-Corasick automaton over ``words`` (each with its value); None when empty."""
    if not words:
        return None
    automaton = ahocorasick.Automaton()
    for word, value in words.items():
        automaton.add_word(word, value)
    automaton.make_automaton()
    return automaton


class GateIndex:
    """Which of many gated patterns can match a text, from one Aho-Corasick pass."""

    def __init__(self, gates: Sequence[Gate]) -> None:
        """Index the gates of patterns ``0 .. len(gates) - 1``."""
        self._always = frozenset(i for i, g in enumerate(gates) if not g)
        self._need = [len(g) for g in gates]
        index: dict[str, list[tuple[int, int]]] = {}
        for i, gate in enumerate(gates):
            for k, strings in enumerate(gate):
                for x in strings:
                    index.setdefault(x, []).append((i, k))
        self._automaton = _automaton({x: tuple(pairs) for x, pairs in index.items()})

    def candidates(self, text: str) -> frozenset[int]:
        """Indexes of the patterns whose gate passes on ``text`` (may still not match)."""
        if self._automaton is None or not text:
            return self._always
        found: set[tuple[int, int]] = set()
        for _, pairs in self._automaton.iter(text):
            found.update(pairs)
        if not found:
            return self._always
        count: dict[int, int] = {}
        for i, _ in found:
            count[i] = count.get(i, 0) + 1
        need = self._need
        return self._always | {i for i, c in count.items() if c == need[i]}


class KeyScan(Generic[T]):
    """Every occurrence of many literal keys in a text, in one Aho-Corasick pass."""

    def __init__(self, keys: Iterable[tuple[str, int, T]]) -> None:
        """Index ``(key, rank, value)`` triples; several values may share a key.

        ``rank`` orders the values found at one start position (lower first).
        """
        by_key: dict[str, list[tuple[int, T]]] = {}
        for key, rank, value in keys:
            if key:
                by_key.setdefault(key, []).append((rank, value))
        self._automaton = _automaton({k: (len(k), tuple(v)) for k, v in by_key.items()})

    def find(self, text: str) -> list[tuple[int, int, T]]:
        """``(start, end, value)`` for every occurrence, by start position, then rank."""
        if self._automaton is None or not text:
            return []
        found = [
            (end + 1 - length, rank, end + 1, value)
            for end, (length, values) in self._automaton.iter(text)
            for rank, value in values
        ]
        found.sort(key=lambda f: (f[0], f[1]))
        return [(start, stop, value) for start, _, stop, value in found]
