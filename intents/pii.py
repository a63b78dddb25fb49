"""Personal-data masking: find phones, e-mails, addresses, マイナンバー and names, replace them."""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

from intents.tokenizer import tokenize
from intents.types import Analysis, Token

logger = logging.getLogger(__name__)

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
        if norm in ("\u30fc", "\uff70") and not (out and out[-1].isdigit()):
            pass  # a long-vowel mark (コーポ, マイナンバー), not a hyphen between digits
        else:
            norm = norm.translate(_DASHES)
        if digits:
            norm = norm.translate(_KANJI_DIGITS)
        for c in norm:
            out.append(c)
            starts.append(i)
            ends.append(i + 1)
    return _View("".join(out), tuple(starts), tuple(ends))


# ----------------------------------------------------------------------- numbers
_SEP = r"[\s\-()\.・の]{0,2}"
_PHONE_DOMESTIC = re.compile(rf"(?<![\d+])\(?0(?:{_SEP}\d){{9,10}}(?!\d)")
_PHONE_INTL = re.compile(rf"\+\s?81{_SEP}(?:\(0\))?(?:{_SEP}\d){{9,10}}(?!\d)")
_ELEVEN_DIGIT_PREFIXES = ("020", "050", "060", "070", "080", "090", "0800")
_MYNUMBER = re.compile(r"(?<![\d\-])\d{4}[\s\-]?\d{4}[\s\-]?\d{4}(?![\d\-])")
_MYNUMBER_CONTEXT = re.compile(r"(マイナンバー|まいなんばー|個人番号|my\s?number)", re.I)
_POSTAL_MARKED = re.compile(r"〒\s?\d{3}\s?-?\s?\d{4}(?!\d)")
_POSTAL_HYPHEN = re.compile(r"(?<![\d\-])\d{3}-\d{4}(?![\d\-])")
_POSTAL_PLAIN = re.compile(r"(?<![\d\-])\d{7}(?![\d\-])")
_POSTAL_CONTEXT = re.compile(r"(郵便番号|ゆうびんばんごう|〒|postal|zip)", re.I)
# Bounded repeats and a start-of-word anchor keep this linear on 100 kB of letters.
_EMAIL = re.compile(
    r"(?<![a-z0-9._%+\-])[a-z0-9][a-z0-9._%+\-]{0,63}\s?"
    r"(?:@|\(at\)|\[at\]|アットマーク|あっとまーく)\s?"
    r"[a-z0-9\-]{1,63}(?:\.[a-z0-9\-]{1,63}){0,6}\.[a-z]{2,24}(?![a-z])",
    re.I,
)
_URL = re.compile(r"(?:https?://|www\.)[\w\-.~:/?#\[\]@!$&'()*+,;=%]+", re.I | re.ASCII)
_LINE_ID = re.compile(
    r"(?:line|ライン|らいん)\s?(?:の)?\s?(?:id|アイディー|アイディ|アカウント)?\s?"
    r"(?:は|:|=|→)?\s?(@?[a-z0-9][a-z0-9._\-]{2,19})(?![a-z0-9._\-])",
    re.I,
)
# A bare "ID xxx" (LINE or another messenger named earlier in the sentence).
_BARE_ID = re.compile(
    r"(?<![a-z])(?:id|アイディー|アイディ)\s?(?:は|:|=|→)?\s?(@?[a-z0-9][a-z0-9._\-]{2,19})"
    r"(?![a-z0-9._\-])",
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
    found += [view.span("LINE_ID", m.start(1), m.end(1)) for m in _BARE_ID.finditer(s)]
    return found


# ------------------------------------------------------------------ vocabulary
class PiiRulesError(ValueError):
    """The masking vocabulary file does not follow its schema."""


_LIST_KEYS = (
    "honorifics",
    "common_word_names",
    "not_names",
    "role_suffixes",
    "kinship",
    "kana_not_names",
    "prefectures",
    "address_context",
)


@dataclass(frozen=True, slots=True)
class _Vocab:
    honorifics: frozenset[str]
    common_word_names: frozenset[str]
    not_names: frozenset[str]
    role_suffixes: tuple[str, ...]
    kinship: frozenset[str]
    kana_not_names: frozenset[str]
    prefectures: tuple[str, ...]
    address_context: re.Pattern[str]
    honorific_re: re.Pattern[str]
    kana_honorific_re: re.Pattern[str]
    kinship_kana_re: re.Pattern[str]


def parse_vocab(data: Any) -> _Vocab:
    """Validate the masking vocabulary (parsed ``pii.yaml``).

    Args:
        data: the mapping read from the YAML file.

    Returns:
        The vocabulary, with its lookup patterns compiled.

    Raises:
        PiiRulesError: when a list is missing, empty or holds something else than text.
    """
    if not isinstance(data, dict) or data.get("version") != 1:
        raise PiiRulesError("pii vocabulary: expected a mapping with version: 1")
    lists: dict[str, list[str]] = {}
    for key in _LIST_KEYS:
        value = data.get(key)
        if not isinstance(value, list) or not value:
            raise PiiRulesError(f"pii vocabulary: {key!r} must be a non-empty list")
        if not all(isinstance(v, str) and v.strip() for v in value):
            raise PiiRulesError(f"pii vocabulary: {key!r} must hold non-empty strings")
        lists[key] = [unicodedata.normalize("NFKC", v) for v in value]
    unknown = set(data) - {*_LIST_KEYS, "version"}
    if unknown:
        raise PiiRulesError(f"pii vocabulary: unknown keys {sorted(unknown)}")
    honorifics = sorted(lists["honorifics"], key=len, reverse=True)
    alternation = "|".join(map(re.escape, honorifics))
    return _Vocab(
        honorifics=frozenset(lists["honorifics"]),
        common_word_names=frozenset(lists["common_word_names"]),
        not_names=frozenset(lists["not_names"]),
        role_suffixes=tuple(lists["role_suffixes"]),
        kinship=frozenset(lists["kinship"]),
        kana_not_names=frozenset(lists["kana_not_names"]),
        prefectures=tuple(lists["prefectures"]),
        address_context=re.compile("|".join(map(re.escape, lists["address_context"]))),
        honorific_re=re.compile(f"(?:{alternation})"),
        # Kana names the tokenizer splits wrongly (はるとくん): a kana run before a suffix.
        kana_honorific_re=re.compile(
            "(?<![ぁ-んァ-ヶー])([ぁ-ん]{2,6}|[ァ-ヶー]{2,10})(?=くん|ちゃん|さん|君|様|さま)"
        ),
        # Kinship + の + a hiragana word + particle: 孫のゆうとが (tokenized ゆう|と|が).
        kinship_kana_re=re.compile(
            "(?:"
            + "|".join(map(re.escape, sorted(lists["kinship"], key=len, reverse=True)))
            + ")の([ぁ-ん]{2,5})(?=[がはをにもの])"
        ),
    )


@lru_cache(maxsize=1)
def vocab() -> _Vocab:
    """Load and validate ``intents/rules/pii.yaml`` once per process."""
    text = resources.files("intents").joinpath("rules/pii.yaml").read_text("utf-8")
    return parse_vocab(yaml.safe_load(text))


# ------------------------------------------------------------------------ names
_PARTICLES = "のとがはもにをやへ"
_KANA_ONLY = re.compile(r"[ぁ-んァ-ヶー]+")
_HIRAGANA_ONLY = re.compile(r"[ぁ-ん]+")
_KANA_SUFFIX = re.compile(r"(くん|ちゃん|さん|さま|たん)$")


def _is_person(tok: Token) -> bool:
    return tok.pos[:3] == ("名詞", "固有名詞", "人名")


def _honorific_at(tokens: tuple[Token, ...], i: int, text: str, v: _Vocab) -> bool:
    """True when a name suffix (さん, くん, 先生 …) starts right after token i."""
    end = tokens[i].end
    return bool(v.honorific_re.match(text, end))


def _not_a_name(surface: str, v: _Vocab) -> bool:
    return surface in v.not_names or (
        surface.startswith(("お", "ご")) and surface[1:] in v.not_names
    )


def _names(view: _View, tokens: tuple[Token, ...], v: _Vocab) -> list[PiiSpan]:
    text = view.text
    found: list[PiiSpan] = []
    i = 0
    n = len(tokens)
    while i < n:
        tok = tokens[i]
        if _is_person(tok):
            j = i
            while j + 1 < n and _is_person(tokens[j + 1]) and tokens[j + 1].start == tokens[j].end:
                j += 1
            surface = text[tok.start : tokens[j].end]
            strong = j > i or _honorific_at(tokens, j, text, v)
            if strong or surface not in v.common_word_names:
                found.append(view.span("NAME", tok.start, tokens[j].end))
            i = j + 1
            continue
        # A common noun or kana word directly before さん/くん/ちゃん that is no role.
        if (
            tok.pos[0] == "名詞"
            and tok.pos[1] in ("普通名詞", "固有名詞")
            and _honorific_at(tokens, i, text, v)
            and not _not_a_name(tok.surface, v)
            and not (tok.pos[1] == "普通名詞" and tok.surface.endswith(v.role_suffixes))
            and tok.surface not in v.prefectures
        ):
            found.append(view.span("NAME", tok.start, tok.end))
        # Kinship + の + a kana word: 娘のさくらが, 息子のはるとは.
        elif (
            (
                tok.surface in v.kinship
                and i + 2 < n
                and tokens[i + 1].surface == "の"
                and tokens[i + 2].pos[0] == "名詞"
                and _HIRAGANA_ONLY.fullmatch(tokens[i + 2].surface)
                and len(tokens[i + 2].surface) >= 2
                and tokens[i + 2].surface not in v.kana_not_names
            )
            or (  # kinship + a bracketed proper noun: 夫（松本）が
                tok.surface in v.kinship
                and i + 3 < n
                and tokens[i + 1].surface in ("(", "（", "「")
                and tokens[i + 2].pos[:2] == ("名詞", "固有名詞")
                and tokens[i + 3].surface in (")", "）", "」")
            )
        ):
            found.append(view.span("NAME", tokens[i + 2].start, tokens[i + 2].end))
        i += 1
    for m in v.kinship_kana_re.finditer(text):
        word = _KANA_SUFFIX.sub("", m.group(1))
        if len(word) >= 2 and not any(word.startswith(w) for w in v.kana_not_names):
            found.append(view.span("NAME", m.start(1), m.start(1) + len(word)))
    for m in v.kana_honorific_re.finditer(text):
        word = m.group(1)
        start = m.start(1)
        if (
            word[0] in _PARTICLES
            and len(word) > 3
            and start > 0
            and not _KANA_ONLY.match(text[start - 1])
        ):
            word, start = word[1:], start + 1  # 息子のはるとくん → はると
        if _not_a_name(word, v) or any(
            word.endswith(w) for w in ("おかあ", "おとう", "ばあ", "じい")
        ):
            continue
        found.append(view.span("NAME", start, m.end(1)))
    return found


# -------------------------------------------------------------------- addresses
_DIGITS = "0-9０-９〇一二三四五六七八九十百"
# Bounded, and never starting inside a longer number: keeps 100 kB of digits linear.
_NUM = rf"(?<![{_DIGITS}])[{_DIGITS}]{{1,6}}(?![{_DIGITS}])"
_MARK = r"(?:丁目|ちょうめ|条[東西南北]?|番地|番|号|-|の)"
_BLOCK = rf"{_NUM}{_MARK}(?:{_NUM}{_MARK}?){{0,4}}"
_BUILDING = (
    r"(?:\s?[^\s、。,!?()「」]{0,15}?(?:マンション|ハイツ|コーポ|アパート|荘|ビル|レジデンス"
    r"|タワー|メゾン|パレス|団地|住宅|寮|棟|ハウス|ヒルズ|コート|ハイム)[^\s、。,!?()「」\d]{0,6})?"
    r"(?:\s?\d{1,4}(?:号室|号|階|f)?)?"
)
_TOWN = r"(?:[一-龥々〆ヶケァ-ヴーノ]|(?<=[一-龥])[のが](?=[一-龥])){0,20}?"
_ADDRESS = re.compile(rf"(?P<town>{_TOWN})(?P<block>{_BLOCK}){_BUILDING}", re.I)
_STRONG_MARK = re.compile(r"丁目|ちょうめ|番地|番|号|条")
_MUNICIPALITY_CUT = re.compile(r"^.*?(?:都|道|府|県|市|区|郡[^町村]{1,4}[町村]|郡|村)(?=.)")
_DASHED = re.compile(rf"{_NUM}-{_NUM}")
# Without a place or 住所 before it, only 丁目/番地/番…号 make numbers an address
# (第123号 is a case number).
_UNANCHORED_OK = re.compile(r"丁目|ちょうめ|番地|番.*号")


def _addresses(view: _View, tokens: tuple[Token, ...], v: _Vocab) -> list[PiiSpan]:
    text = view.text
    found: list[PiiSpan] = []
    place_ends = {t.end for t in tokens if t.pos[2:3] == ("地名",)}
    for m in _ADDRESS.finditer(text):
        town, block = m.group("town"), m.group("block")
        strong = bool(_STRONG_MARK.search(block))
        if not strong and not _DASHED.search(block):
            continue
        anchored = (
            bool(town)
            and (
                m.start("block") in place_ends
                or any(c in town for c in "都道府県市区町村郡")
                or any(p in text[max(0, m.start() - 12) : m.start()] for p in v.prefectures)
            )
        ) or bool(v.address_context.search(text, max(0, m.start() - 15), m.start()))
        if not anchored and not (town and _UNANCHORED_OK.search(block)):
            continue
        start = m.start()
        cut = _MUNICIPALITY_CUT.match(town)
        while cut:  # keep 都道府県 and 市区町村 readable: they route the person, not identify
            start += cut.end()
            cut = _MUNICIPALITY_CUT.match(text[start : m.start("block")])
        while start < m.start("block") and text[start] in "のが":
            start += 1
        end = m.end()
        while end > m.start("block") and text[end - 1] in "-の ":
            end -= 1
        found.append(view.span("ADDRESS", start, end))
    return found


def find(text: str, analysis: Analysis | None = None) -> tuple[PiiSpan, ...]:
    """Find personal data in a text.

    Args:
        text: the message as typed (any string).
        analysis: the message's :func:`intents.tokenizer.analyse` result, when the caller
            has it; its tokens are reused (saving a Sudachi run) only when they were made
            from exactly the text masking tokenises, so the result is always the same.

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
    plain = _view(text, digits=False)
    if analysis is not None and not analysis.truncated and analysis.text == plain.text:
        tokens = analysis.tokens
    else:
        tokens = tokenize(plain.text)
    v = vocab()
    candidates += _addresses(plain, tokens, v) + _names(plain, tokens, v)
    chosen: list[PiiSpan] = []
    taken = bytearray(len(text) + 1)
    for span in sorted(candidates, key=lambda p: (_PRIORITY[p.kind], p.start - p.end)):
        if span.end <= span.start or any(taken[span.start : span.end]):
            continue
        taken[span.start : span.end] = b"\x01" * (span.end - span.start)
        chosen.append(span)
    return tuple(sorted(chosen, key=lambda p: p.start))


def mask(text: str, analysis: Analysis | None = None) -> Masked:
    """Replace personal data with typed placeholders (<PHONE>, <EMAIL>, <NAME>, …).

    Prefecture and city names alone, ages, amounts, dates and the short service numbers
    (110, 119, #9110, 189) are kept: triage and routing need them.

    Args:
        text: the message as typed (any string).
        analysis: optional analysis of ``text`` whose tokens may be reused (see :func:`find`).

    Returns:
        The masked text and the spans (offsets into ``text``) that were replaced.
    """
    spans = find(text, analysis)
    parts: list[str] = []
    last = 0
    for span in spans:
        parts.append(text[last : span.start])
        parts.append(f"<{span.kind}>")
        last = span.end
    parts.append(text[last:])
    return Masked(text="".join(parts), spans=spans)
