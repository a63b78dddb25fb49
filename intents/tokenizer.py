"""SudachiPy tokenisation, loaded once per process, and the Analysis built on it."""

from __future__ import annotations

import threading
from functools import lru_cache

from sudachipy import Dictionary, SplitMode
from sudachipy import Tokenizer as _SudachiTokenizer

from intents.normalize import fold, normalize
from intents.types import Analysis, Token

# Sudachi refuses inputs over ~49 kB of UTF-8; chunks stay well below that.
_CHUNK_CHARS = 4000
# Triage looks at the start of a message; a 100 kB paste is cut, not rejected.
MAX_ANALYSIS_CHARS = 20000

_lock = threading.Lock()


@lru_cache(maxsize=1)
def _dictionary() -> Dictionary:
    return Dictionary(dict="core")


@lru_cache(maxsize=1)
def _tokenizer() -> _SudachiTokenizer:
    return _dictionary().tokenizer(mode=SplitMode.C)


def load() -> None:
    """Load the dictionary now (it is otherwise loaded on first use)."""
    _tokenizer()


def _chunks(text: str) -> list[tuple[int, str]]:
    """Split text at sentence ends so no chunk exceeds the Sudachi input limit."""
    out: list[tuple[int, str]] = []
    start = 0
    while start < len(text):
        end = min(start + _CHUNK_CHARS, len(text))
        if end < len(text):
            cut = max(text.rfind(p, start, end) for p in ("。", "\n", "！", "？", "!", "?", " "))
            if cut > start:
                end = cut + 1
        out.append((start, text[start:end]))
        start = end
    return out


def tokenize(text: str) -> tuple[Token, ...]:
    """Tokenise already normalised text with SudachiPy (split mode C).

    Args:
        text: output of :func:`intents.normalize.normalize`.

    Returns:
        The morphemes with character offsets into ``text``.
    """
    tokens: list[Token] = []
    tok = _tokenizer()
    for offset, chunk in _chunks(text):
        with _lock:  # a Sudachi tokenizer object is not safe to share across threads
            morphemes = tok.tokenize(chunk)
            for m in morphemes:
                tokens.append(
                    Token(
                        surface=m.surface(),
                        normalized=m.normalized_form(),
                        dictionary=m.dictionary_form(),
                        reading=m.reading_form(),
                        pos=tuple(m.part_of_speech()),
                        start=offset + m.begin(),
                        end=offset + m.end(),
                    )
                )
    return tuple(tokens)


_LITERAL_POS = frozenset({"補助記号", "空白", "記号"})


def reading_of(token: Token) -> str:
    """Reading used for kana matching; symbols, spaces, numerals and Latin keep their surface."""
    if not token.reading or token.pos[0] in _LITERAL_POS or token.pos[1] == "数詞":
        return token.surface
    if token.surface.isascii():
        return token.surface
    return token.reading


def analyse(raw: str) -> Analysis:
    """Normalise, fold and tokenise one message.

    Args:
        raw: the message as received; any string.

    Returns:
        The Analysis every matcher works on.
    """
    text = normalize(raw)
    truncated = len(text) > MAX_ANALYSIS_CHARS
    if truncated:
        text = text[:MAX_ANALYSIS_CHARS]
    tokens = tokenize(text)
    reading = fold("".join(reading_of(t) for t in tokens))
    return Analysis(
        raw_length=len(raw),
        text=text,
        folded=fold(text),
        tokens=tokens,
        reading=reading,
        truncated=truncated,
    )
