"""Text normalisation: one canonical form for display and one folded key for matching."""

from __future__ import annotations

import re
import unicodedata

# Zero-width and bidi controls, variation selectors, BOM: invisible, never meaningful here.
_INVISIBLE = re.compile(
    "[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\ufe00-\ufe0f\U000e0100-\U000e01ef]"
)
# Pictographs and symbols (emoji) incl. keycaps/ZWJ leftovers; replaced by a space.
_EMOJI = re.compile(
    "[\U0001f000-\U0001faff\U00002600-\U000027bf\U0001f1e6-\U0001f1ff\u2300-\u23ff"
    "\u2b00-\u2bff\u3030\u303d\u3297\u3299\U000e0020-\U000e007f\u20e3]"
)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_SPACES = re.compile(r"[ \t\u3000]+")
_NEWLINES = re.compile(r"\n{3,}")
# Repeated punctuation: "！！！" → "！", "。。。" → "…", "ｗｗｗ" stays meaningful as "w".
_REPEAT_PUNCT = re.compile(r"([!?！？。、,.・〜~ー―-])\1{2,}")
_DASHES = re.compile("[\u2010-\u2015\u2212\uff0d\u30fc\uff70\u301c\uff5e~]")
# An ASCII hyphen after katakana is a long-vowel mark typed on a half-width keyboard.
_KANA_HYPHEN = re.compile("(?<=[\u30a1-\u30fa\u30fc])-")
_SURROGATES = re.compile("[\ud800-\udfff]")

_SMALL_KANA = str.maketrans(
    "ァィゥェォッャュョヮヵヶぁぃぅぇぉっゃゅょゎゕゖ",
    "アイウエオツヤユヨワカケあいうえおつやゆよわかけ",
)


# What may never be shown back: bidi overrides/isolates that can reorder a line on screen,
# invisible spaces, and control characters (newline and tab stay). ZWJ stays for emoji.
_UNSAFE_FOR_DISPLAY = re.compile(
    "[\u200b\u200c\u200e\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff"
    "\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]"
)


def display_safe(text: str) -> str:
    """Return text as typed, minus characters that could disguise it when displayed.

    Unlike :func:`normalize`, the wording, width and emoji are kept: this is what a
    counselor reads and what is stored (after masking).

    Args:
        text: a message as received.

    Returns:
        The text without bidi controls, invisible spaces and control characters.
    """
    return _UNSAFE_FOR_DISPLAY.sub("", text)


def normalize(text: str) -> str:
    """Return the canonical form of a message.

    NFKC (half-width katakana → full-width, full-width ASCII → ASCII), invisible and
    control characters and emoji removed, spaces and repeated punctuation collapsed.

    Args:
        text: the message as typed; any Unicode, including lone surrogates.

    Returns:
        The normalised text, stripped.
    """
    text = _SURROGATES.sub("", text)
    text = unicodedata.normalize("NFKC", text)
    text = _INVISIBLE.sub("", text)
    text = _EMOJI.sub(" ", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub(" ", text)
    text = _REPEAT_PUNCT.sub(r"\1", text)
    text = _SPACES.sub(" ", text)
    text = _NEWLINES.sub("\n\n", text)
    return text.strip()


_TO_KATAKANA = {c: c + 0x60 for c in range(0x3041, 0x3097)}
_TO_HIRAGANA = {c: c - 0x60 for c in range(0x30A1, 0x30F7)}
# One table for the character-wise part of fold(): kana → katakana, small → large kana,
# dash-like marks → ー (str.translate is far cheaper than per-character Python).
_FOLD_TABLE = {
    **_TO_KATAKANA,
    **{
        ord(k): ord(v)
        for k, v in zip("ァィゥェォッャュョヮヵヶ", "アイウエオツヤユヨワカケ", strict=True)
    },
    **{
        ord(k): ord(v)
        for k, v in zip("ぁぃぅぇぉっゃゅょゎゕゖ", "アイウエオツヤユヨワカケ", strict=True)
    },
    **dict.fromkeys(
        [*range(0x2010, 0x2016), 0x2212, 0xFF0D, 0x30FC, 0xFF70, 0x301C, 0xFF5E, ord("~")],
        ord("ー"),
    ),
}


def to_katakana(text: str) -> str:
    """Map hiragana to katakana; other characters are kept."""
    return text.translate(_TO_KATAKANA)


def to_hiragana(text: str) -> str:
    """Map katakana to hiragana; other characters are kept."""
    return text.translate(_TO_HIRAGANA)


def fold(text: str) -> str:
    """Return the matching key of already normalised text.

    Hiragana and katakana meet (both become katakana), small kana become large,
    every dash-like mark becomes the long-vowel mark, Latin letters are lower-cased and
    spaces are removed, so シャブ/しゃぶ, まんびき/マンビキ and ＡＡ/aa compare equal.

    Args:
        text: output of :func:`normalize`.

    Returns:
        The folded key; same length as the input minus spaces.
    """
    text = text.translate(_FOLD_TABLE)
    if "-" in text:
        text = _KANA_HYPHEN.sub("ー", text)
    return text.lower().replace(" ", "")


def fold_with_offsets(text: str, folded: str | None = None) -> tuple[str, tuple[int, ...]]:
    """Fold text like :func:`fold` and keep, for every folded character, its source index.

    Matchers search the folded key and report spans in the normalised text, so staff see
    the words as written.

    Args:
        text: output of :func:`normalize`.
        folded: ``fold(text)`` when the caller has it already.

    Returns:
        ``(folded, offsets)`` where ``folded == fold(text)`` and ``offsets[i]`` is the index
        in ``text`` of ``folded[i]``.
    """
    if folded is None:
        folded = fold(text)
    if len(folded) == len(text) and " " not in text:  # one to one: the identity map
        return folded, tuple(range(len(text)))
    if len(text.lower()) == len(text):  # the usual case: only spaces change the length
        return folded, tuple(i for i, ch in enumerate(text) if ch != " ")
    # Rare: lower-casing lengthens a character (İ → i̇); map each produced character back.
    same_length = _KANA_HYPHEN.sub("ー", text.translate(_FOLD_TABLE))
    offsets = [i for i, ch in enumerate(same_length) if ch != " " for _ in ch.lower()]
    return folded, tuple(offsets)


def kana_key(text: str) -> str:
    """Return the hiragana form of a folded key, the form cue patterns are written against."""
    return to_hiragana(text)


def pattern_key(pattern: str) -> str:
    """Fold a regular expression written by people the way :func:`kana_key` folds text.

    Only kana are mapped (katakana → hiragana, small → large), so regex syntax is untouched.

    Args:
        pattern: a regular expression from a rule file.

    Returns:
        The pattern to compile against ``kana_key(fold(text))``.
    """
    return to_hiragana(to_katakana(pattern).translate(_SMALL_KANA))
