"""Personal-data masking: find phones, e-mails, addresses, マイナンバー and names, replace them."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

KINDS = ("EMAIL", "URL", "MYNUMBER", "PHONE", "POSTAL", "LINE_ID", "ADDRESS", "NAME")
# When two findings overlap, the earlier kind in KINDS wins (an e-mail beats the digits
# inside it, a マイナンバー beats the phone-shaped 10 digits inside it).
_PRIORITY = {kind: i for i, kind in enumerate(KINDS)}

_KANJI_DIGITS = str.maketrans("〇零一二三四五六七八九", "00123456789")
_DASHES = str.maketrans(
    dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u30fc\uff70\u2500\u2501", "-")
)


@dataclass(frozen=True, slots=True)
class PiiSpan:
    """One piece of personal data: its kind and character offsets in the original text."""

    kind: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Masked:
    """A text with every personal datum replaced by a typed placeholder such as <PHONE>."""

    text: str
    spans: tuple[PiiSpan, ...]


@dataclass(frozen=True, slots=True)
class _View:
    """A normalised copy of the text with, per character, the original span it came from."""

    text: str
    starts: tuple[int, ...]
    ends: tuple[int, ...]

    def span(self, kind: str, start: int, end: int) -> PiiSpan:
        return PiiSpan(kind, self.starts[start], self.ends[end - 1])


def _view(text: str, *, digits: bool) -> _View:
    """NFKC per character (full-width → ASCII), optionally kanji numerals → digits.

    Combining (semi-)voiced marks left by half-width katakana are composed again so that
    ﾀﾞ becomes ダ, keeping words whole for the tokenizer.
    """
    out: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    for i, ch in enumerate(text):
        surrogate = "\ud800" <= ch <= "\udfff"
        norm = "\ufffd" if surrogate else unicodedata.normalize("NFKC", ch)
        if norm in ("\u3099", "\u309a") and out:
            composed = unicodedata.normalize("NFC", out[-1] + norm)
            if len(composed) == 1:
                out[-1] = composed
                ends[-1] = i + 1
                continue
        norm = norm.translate(_DASHES)
        if digits:
            norm = norm.translate(_KANJI_DIGITS)
        for c in norm:
            out.append(c)
            starts.append(i)
            ends.append(i + 1)
    return _View("".join(out), tuple(starts), tuple(ends))


# ----------------------------------------------------------------------- numbers
_SEP = r"[\s\-()\.]{0,2}"
_PHONE_DOMESTIC = re.compile(rf"(?<![\d+])\(?0(?:{_SEP}\d){{9,10}}(?!\d)")
_PHONE_INTL = re.compile(rf"\+\s?81{_SEP}(?:\(0\))?(?:{_SEP}\d){{9,10}}(?!\d)")
_ELEVEN_DIGIT_PREFIXES = ("020", "050", "060", "070", "080", "090", "0800")
_MYNUMBER = re.compile(r"(?<![\d\-])\d{4}[\s\-]?\d{4}[\s\-]?\d{4}(?![\d\-])")
_MYNUMBER_CONTEXT = re.compile(r"(マイナンバー|まいなんばー|個人番号|my\s?number)", re.I)
_POSTAL_MARKED = re.compile(r"〒\s?\d{3}\s?-?\s?\d{4}(?!\d)")
_POSTAL_HYPHEN = re.compile(r"(?<![\d\-])\d{3}-\d{4}(?![\d\-])")
_POSTAL_PLAIN = re.compile(r"(?<![\d\-])\d{7}(?![\d\-])")
_POSTAL_CONTEXT = re.compile(r"(郵便番号|ゆうびんばんごう|〒|postal|zip)", re.I)
_EMAIL = re.compile(
    r"[a-z0-9][a-z0-9._%+\-]*\s?(?:@|\(at\)|\[at\]|アットマーク|あっとまーく)\s?"
    r"[a-z0-9\-]+(?:\.[a-z0-9\-]+)*\.[a-z]{2,}",
    re.I,
)
_URL = re.compile(r"(?:https?://|www\.)[\w\-.~:/?#\[\]@!$&'()*+,;=%]+", re.I | re.ASCII)
_LINE_ID = re.compile(
    r"(?:line|ライン|らいん)\s?(?:の)?\s?(?:id|アイディー|アイディ|アカウント)?\s?"
    r"(?:は|:|=|→)?\s?(@?[a-z0-9][a-z0-9._\-]{2,19})(?![a-z0-9._\-])",
    re.I,
)
_HANDLE = re.compile(r"(?<![\w@.])@[a-z0-9._]{3,30}(?![\w@])", re.I | re.ASCII)


def mynumber_valid(digits: str) -> bool:
    """Check a 12-digit individual number (マイナンバー) against its check digit.

    The check digit is 11 − (Σ Pn·Qn mod 11), or 0 when the remainder is 0 or 1, where Pn
    is the n-th digit counted from the right without the check digit and Qn is n+1 for
    n ≤ 6 and n−5 above (総務省令 個人番号の検査用数字).

    Args:
        digits: the number as 12 ASCII digits.

    Returns:
        True when the number is well formed and its check digit matches.
    """
    if len(digits) != 12 or not digits.isascii() or not digits.isdigit():
        return False
    body = digits[:11][::-1]
    total = sum(int(p) * (n + 1 if n <= 6 else n - 5) for n, p in enumerate(body, start=1))
    remainder = total % 11
    check = 0 if remainder <= 1 else 11 - remainder
    return check == int(digits[11])


def _phone_digits_ok(digits: str) -> bool:
    if not digits.startswith("0") or digits.startswith("00"):
        return False
    if len(digits) == 10:
        return True
    return len(digits) == 11 and digits.startswith(_ELEVEN_DIGIT_PREFIXES)


def _digit_positions(s: str, start: int, end: int) -> list[int]:
    return [i for i in range(start, end) if s[i].isdigit()]


def _phones(view: _View) -> list[PiiSpan]:
    s = view.text
    found: list[PiiSpan] = []
    for m in _PHONE_DOMESTIC.finditer(s):
        pos = _digit_positions(s, m.start(), m.end())
        digits = "".join(s[i] for i in pos)
        if not _phone_digits_ok(digits) and len(pos) == 11 and _phone_digits_ok(digits[:10]):
            pos = pos[:10]  # a fixed number followed by one more digit: keep the number
        elif not _phone_digits_ok(digits):
            continue
        start = m.start()
        end = pos[-1] + 1
        if end < len(s) and s[end] == ")" and "(" in s[start:end]:
            end += 1
        found.append(view.span("PHONE", start, end))
    for m in _PHONE_INTL.finditer(s):
        pos = _digit_positions(s, m.start(), m.end())
        rest = "".join(s[i] for i in pos)[2:]  # drop the country code 81
        national = rest if rest.startswith("0") else "0" + rest
        if _phone_digits_ok(national):
            found.append(view.span("PHONE", m.start(), m.end()))
    return found


def _mynumbers(view: _View) -> list[PiiSpan]:
    s = view.text
    found: list[PiiSpan] = []
    for m in _MYNUMBER.finditer(s):
        digits = re.sub(r"\D", "", m.group(0))
        context = _MYNUMBER_CONTEXT.search(s, max(0, m.start() - 20), m.start())
        if mynumber_valid(digits) or context:
            found.append(view.span("MYNUMBER", m.start(), m.end()))
    return found


def _postals(view: _View) -> list[PiiSpan]:
    s = view.text
    found = [view.span("POSTAL", m.start(), m.end()) for m in _POSTAL_MARKED.finditer(s)]
    found += [view.span("POSTAL", m.start(), m.end()) for m in _POSTAL_HYPHEN.finditer(s)]
    for m in _POSTAL_PLAIN.finditer(s):
        if _POSTAL_CONTEXT.search(s, max(0, m.start() - 12), m.start()):
            found.append(view.span("POSTAL", m.start(), m.end()))
    return found


def _emails_urls_ids(view: _View) -> list[PiiSpan]:
    s = view.text
    found = [view.span("EMAIL", m.start(), m.end()) for m in _EMAIL.finditer(s)]
    found += [view.span("URL", m.start(), m.end()) for m in _URL.finditer(s)]
    found += [view.span("LINE_ID", m.start(1), m.end(1)) for m in _LINE_ID.finditer(s)]
    found += [view.span("LINE_ID", m.start(), m.end()) for m in _HANDLE.finditer(s)]
    return found


def find(text: str) -> tuple[PiiSpan, ...]:
    """Find personal data in a text.

    Args:
        text: the message as typed (any string).

    Returns:
        Non-overlapping spans, ordered by position, with offsets into ``text``.
    """
    digit_view = _view(text, digits=True)
    candidates = (
        _emails_urls_ids(digit_view)
        + _mynumbers(digit_view)
        + _phones(digit_view)
        + _postals(digit_view)
    )
    chosen: list[PiiSpan] = []
    taken = bytearray(len(text) + 1)
    for span in sorted(candidates, key=lambda p: (_PRIORITY[p.kind], p.start - p.end)):
        if span.end <= span.start or any(taken[span.start : span.end]):
            continue
        taken[span.start : span.end] = b"\x01" * (span.end - span.start)
        chosen.append(span)
    return tuple(sorted(chosen, key=lambda p: p.start))


def mask(text: str) -> Masked:
    """Replace personal data with typed placeholders (<PHONE>, <EMAIL>, <NAME>, …).

    Prefecture and city names alone, ages, amounts, dates and the short service numbers
    (110, 119, #9110, 189) are kept: triage and routing need them.

    Args:
        text: the message as typed (any string).

    Returns:
        The masked text and the spans (offsets into ``text``) that were replaced.
    """
    spans = find(text)
    parts: list[str] = []
    last = 0
    for span in spans:
        parts.append(text[last : span.start])
        parts.append(f"<{span.kind}>")
        last = span.end
    parts.append(text[last:])
    return Masked(text="".join(parts), spans=spans)
