"""SudachiPy tokenisation, loaded once per process, and the Analysis built on it."""

from __future__ import annotations

import threading
from collections import OrderedDict
from functools import lru_cache

from sudachipy import Dictionary, Morpheme, SplitMode
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


# Word ids at or above this are Sudachi's out-of-vocabulary words, whose forms depend on
# the surface; below it an id fixes the normalized form, lemma, reading and POS.
_OOV_ID = 0xF0000000
# Forms of the words seen so far: the Rust -> Python string copies are a third of
# tokenising (measured). Bounded; a common vocabulary fits well inside it.
_WORD_CACHE_MAX = 20000
_words: dict[int, tuple[str, str, str, tuple[str, ...], bool]] = {}
_pos: dict[int, tuple[str, ...]] = {}
_LITERAL_POS = frozenset({"補助記号", "空白", "記号"})
_new = tuple.__new__
# Recently tokenised texts (short ones only, so the memo stays small).
_RECENT = 16
_RECENT_MAX_CHARS = 2000
_recent: OrderedDict[str, tuple[Token, ...]] = OrderedDict()


def _forms(m: Morpheme) -> tuple[str, str, str, tuple[str, ...], bool]:
    """normalized, lemma, reading, POS and whether kana matching reads the surface."""
    pos_id = m.part_of_speech_id()
    pos = _pos.get(pos_id)
    if pos is None:
        pos = _pos[pos_id] = tuple(m.part_of_speech())
    reading = m.reading_form()
    literal = not reading or pos[0] in _LITERAL_POS or pos[1] == "数詞"
    return m.normalized_form(), m.dictionary_form(), reading, pos, literal


def tokenize(text: str) -> tuple[Token, ...]:
    """Tokenise already normalised text with SudachiPy (split mode C).

    The last few results are kept: one turn reads the person's message several times
    (triage, command matching, masking before it is stored), and tokens are immutable.

    Args:
        text: output of :func:`intents.normalize.normalize`.

    Returns:
        The morphemes with character offsets into ``text``.
    """
    with _lock:
        recent = _recent.get(text)
    if recent is not None:
        return recent
    tokens = _tokenize(text)
    if len(text) <= _RECENT_MAX_CHARS:
        with _lock:
            _recent[text] = tokens
            if len(_recent) > _RECENT:
                _recent.popitem(last=False)
    return tokens


def _tokenize(text: str) -> tuple[Token, ...]:
    tokens: list[Token] = []
    tok = _tokenizer()
    words = _words
    for offset, chunk in _chunks(text):
        # Morphemes tile the chunk (a surface is the input slice), so offsets add up
        # without two more calls into Sudachi per morpheme.
        start = offset
        with _lock:  # a Sudachi tokenizer object is not safe to share across threads
            for m in tok.tokenize(chunk):
                wid = m.word_id()
                forms = words.get(wid)
                if forms is None:
                    forms = _forms(m)
                    if wid < _OOV_ID:
                        if len(words) >= _WORD_CACHE_MAX:
                            words.clear()
                        words[wid] = forms
                surface = m.surface()
                normalized, lemma, reading, pos, literal = forms
                kana = surface if literal or surface.isascii() else reading
                end = start + len(surface)
                # tuple.__new__ skips the NamedTuple's Python-level __new__ (same value).
                tokens.append(
                    _new(Token, (surface, normalized, lemma, reading, pos, start, end, kana))
                )
                start = end
    return tuple(tokens)


def reading_of(token: Token) -> str:
    """Reading used for kana matching; symbols, spaces, numerals and Latin keep their surface."""
    return token.kana


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
    reading = fold("".join(t.kana for t in tokens))
    return Analysis(
        raw_length=len(raw),
        text=text,
        folded=fold(text),
        tokens=tokens,
        reading=reading,
        truncated=truncated,
    )
