"""Literal gates must never skip a pattern that matches: they are only a prefilter."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from intents.crisis import rules as crisis_rules
from intents.literals import GateIndex, gate_of
from intents.matcher import _Entry, _literal_index, build_views
from intents.rules import KeywordRule, cue_rules, topic_rules
from intents.tokenizer import analyse

DATA = Path(__file__).resolve().parents[1] / "data"


def _passes(gate: tuple[frozenset[str], ...], text: str) -> bool:
    return all(any(x in text for x in strings) for strings in gate)


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("(息子|娘)(は|が)", (frozenset({"息子は", "息子が", "娘は", "娘が"}),)),
        ("(a|)b", (frozenset({"b"}),)),  # "ab" contains "b": the shorter one is enough
        ("x*", ()),
        ("(?i)abc", ()),
        ("[^。]{0,5}です", (frozenset({"です"}),)),
        ("(?<!元)夫(が|は)", (frozenset({"夫が", "夫は"}),)),
        ("こども.{0,3}なぐ", (frozenset({"こども"}), frozenset({"なぐ"}))),
        (r"\d+歳", (frozenset({"歳"}),)),
        ("(ab)+c", (frozenset({"ab"}),)),  # "c" alone is one character: dropped
    ],
)
def test_gate_reads_required_literals(pattern: str, expected: tuple[frozenset[str], ...]) -> None:
    assert set(gate_of(re.compile(pattern))) == set(expected)


def test_single_characters_are_dropped_when_something_longer_is_known() -> None:
    gate = gate_of(re.compile("(中|小)学.{0,4}(が|で)"))
    assert gate == (frozenset({"中学", "小学"}),)


_ALPHABET = (
    "あいうえおかがきくこさしすせそたちつてとなにのはばまみむめもやゆよらりるれろわをん"
    + "息子娘夫。、ab"
)
_PATTERNS = [
    "(息子|娘|夫)(が|は|の(こと|件))",
    "(^|(?<=[。、]))[^。]{0,6}?(かか|きき)(さん)?(です|でした)",
    "(あ|い)?う{1,2}(え|)お",
    "(?:ab|a)(?=が)",
    "[かき][さし]+た",
    "(の|が){2,3}な",
    "れ(?!ろ)わ|をん",
]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=_ALPHABET, max_size=40), st.sampled_from(_PATTERNS))
def test_gate_never_rejects_a_matching_text(text: str, pattern: str) -> None:
    regex = re.compile(pattern)
    if regex.search(text):
        assert _passes(gate_of(regex), text)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=_ALPHABET, max_size=40))
def test_gate_index_agrees_with_checking_each_gate(text: str) -> None:
    gates = [gate_of(re.compile(p)) for p in _PATTERNS]
    index = GateIndex(gates)
    expected = {i for i, g in enumerate(gates) if _passes(g, text)}
    assert index.candidates(text) == expected


def _messages() -> list[str]:
    texts: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("text"), str):
                texts.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for name in ("dev.yaml", "intent_cases.yaml", "crisis_cases.yaml"):
        walk(yaml.safe_load((DATA / name).read_text("utf-8")))
    return texts


def test_every_shipped_pattern_gate_holds_on_the_labelled_messages() -> None:
    texts = _messages()
    assert len(texts) > 300
    views = [build_views(analyse(t)) for t in texts]
    cue = cue_rules()
    rule_sets = [topic_rules().patterns, cue.audience, cue.age_group, cue.past]
    rule_sets += [cue.unrelated, cue.consult]
    checked = 0
    for rules in rule_sets:
        for rule in rules:
            gate = gate_of(rule.regex)
            for v in views:
                for text in (v.surface_kana, v.reading_kana):
                    if rule.regex.search(text):
                        checked += 1
                        assert _passes(gate, text), (rule.rule, text)
    crisis = crisis_rules()
    for rule in crisis.rules:
        for group in rule.groups:
            for pat in (*group.folded, *group.reading):
                gate = gate_of(pat)
                for v in views:
                    for text in (v.analysis.folded, v.analysis.reading):
                        if pat.search(text):
                            checked += 1
                            assert _passes(gate, text), (rule.id, text)
    assert checked > 500  # the data exercises the rules, not only their gates


def _naive_find(entries: list[_Entry], text: str) -> list[tuple[int, int, str]]:
    """The reference scan: every key at every position, one-character keys first."""
    out = []
    for i in range(len(text)):
        for short in (True, False):
            for e in entries:
                if e.key and (len(e.key) == 1) == short and text.startswith(e.key, i):
                    out.append((i, i + len(e.key), e.rule.rule))
    return out


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="まんびきシャブ覚醒剤の", max_size=30))
def test_literal_index_finds_every_overlapping_key_in_scan_order(text: str) -> None:
    keys = ["まんびき", "まん", "びき", "き", "シャブ", "覚醒剤", "覚醒", "剤", "まんびき"]
    entries = [
        _Entry(k, KeywordRule(f"t{n}.kw.{k}", "topic", f"t{n}", k, 1.0, False), False)
        for n, k in enumerate(keys)
    ]
    found = [(i, j, e.rule.rule) for i, j, e in _literal_index(entries).find(text)]
    assert found == _naive_find(entries, text)
