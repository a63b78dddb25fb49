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


def to_katakana(text: str) -> str:
    """Map hiragana to katakana; other characters are kept."""
    return "".join(chr(ord(c) + 0x60) if "\u3041" <= c <= "\u3096" else c for c in text)


def to_hiragana(text: str) -> str:
    """Map katakana to hiragana; other characters are kept."""
    return "".join(chr(ord(c) - 0x60) if "\u30a1" <= c <= "\u30f6" else c for c in text)


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
    text = to_katakana(text).translate(_SMALL_KANA)
    text = _DASHES.sub("ー", text)
    text = _KANA_HYPHEN.sub("ー", text)
    return text.lower().replace(" ", "")


def fold_with_offsets(text: str) -> tuple[str, tuple[int, ...]]:
    """Fold text like :func:`fold` and keep, for every folded character, its source index.

    Matchers search the folded key and report spans in the normalised text, so staff see
    the words as written.

    Args:
        text: output of :func:`normalize`.

    Returns:
        ``(folded, offsets)`` where ``folded == fold(text)`` and ``offsets[i]`` is the index
        in ``text`` of ``folded[i]``.
    """
    out: list[str] = []
    offsets: list[int] = []
    for i, ch in enumerate(text):
        if ch == " ":
            continue
        for c in fold(ch) if ch != "-" else "-":
            if c == "-" and out and ("\u30a1" <= out[-1] <= "\u30fa" or out[-1] == "ー"):
                c = "ー"
            out.append(c)
            offsets.append(i)
    return "".join(out), tuple(offsets)


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
