"""Sudachi-tokenised text for the SQLite FTS5 index, and safe FTS5 queries built from it."""

from __future__ import annotations

from intents.normalize import normalize
from intents.tokenizer import tokenize

# Tokens that carry no meaning for search; particles etc. are indexed but never queried.
_SKIP_POS = frozenset({"補助記号", "空白", "記号"})
_QUERY_POS = frozenset({"名詞", "動詞", "形容詞", "形状詞", "副詞", "代名詞", "接頭辞", "接尾辞"})
# Normalized forms of light verbs and formal nouns (する → 為る) that match everything.
_STOP = frozenset(
    {"為る", "有る", "居る", "成る", "出来る", "仕舞う", "事", "物", "様", "為", "の", "ん", "何"}
)


def _terms(text: str, *, query: bool) -> list[str]:
    out: list[str] = []
    for token in tokenize(normalize(text)):
        if token.pos[0] in _SKIP_POS:
            continue
        if query and (token.pos[0] not in _QUERY_POS or token.normalized in _STOP):
            continue
        term = token.normalized.lower().replace('"', "").strip()
        if term:
            out.append(term)
    return out


def index_text(*parts: str) -> str:
    """Space-joined Sudachi normalized forms of the given texts, as stored in FTS5 columns."""
    return " ".join(t for part in parts if part for t in _terms(part, query=False))


def match_query(text: str) -> str | None:
    """An FTS5 MATCH expression (content words OR-ed, each quoted) or None when there are none."""
    terms = list(dict.fromkeys(_terms(text, query=True)))[:32]
    if not terms:
        return None
    return " OR ".join(f'"{t}"' for t in terms)
