"""Validation of every write: raw mappings (YAML, admin forms) become checked value types.

Messages are Japanese and meant for the staff member who typed the value.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment

from knowledge.models import FaqEntry, Template
from knowledge.taxonomy import Taxonomy, load_taxonomy
from knowledge.types import HoursRule, Resource

ID_RE = re.compile(r"^[a-z0-9][a-z0-9_.\-]{0,79}$")
# Three-digit public numbers that may appear as a resource phone.
SHORT_NUMBERS = frozenset({"110", "118", "119", "188", "189"})
_HASH_CODE_RE = re.compile(r"^#\d{4}$")  # #9110, #8891, #8103, #8008
_PHONE_RE = re.compile(r"^0\d{1,4}(-\d{1,6}){1,2}$|^0\d{9,10}$")
_URL_RE = re.compile(r"^https?://[^\s/$.?#][^\s]*$", re.IGNORECASE)
_TIME_RE = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")
_PREF_RE = re.compile(r"^(0[1-9]|[1-4]\d)$")
_MUNI_RE = re.compile(r"^\d{5,6}$")
COVERAGES = {"national": "全国", "prefecture": "都道府県", "municipality": "市区町村"}
HOW_OPTIONS = ("電話", "来所", "メール", "LINE", "チャット", "オンライン", "訪問")
DAY_NAMES = "月火水木金土日祝"  # index = HoursRule day number (7 = public holiday)

RESOURCE_FIELDS = (
    "id",
    "name",
    "kind",
    "description",
    "topics",
    "audiences",
    "age_groups",
    "coverage",
    "prefecture_code",
    "municipality_code",
    "phone",
    "url",
    "hours",
    "always_open",
    "hours_note",
    "how",
    "notes",
    "source_url",
    "verified_on",
    "verification_note",
    "sample",
    "active",
)
TEMPLATE_FIELDS = ("id", "description", "text")
FAQ_FIELDS = ("id", "questions", "answer", "topics", "active")

_ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


class ValidationError(ValueError):
    """Invalid input; ``errors`` lists (field, Japanese message) pairs for the staff member."""

    def __init__(self, errors: Iterable[tuple[str, str]]) -> None:
        self.errors: list[tuple[str, str]] = list(errors)
        super().__init__("; ".join(f"{f}: {m}" for f, m in self.errors))


class _Collector:
    def __init__(self) -> None:
        self.errors: list[tuple[str, str]] = []

    def add(self, field: str, message: str) -> None:
        self.errors.append((field, message))

    def raise_if_any(self) -> None:
        if self.errors:
            raise ValidationError(self.errors)


def template_environment() -> SandboxedEnvironment:
    """The sandboxed jinja2 environment (StrictUndefined) used to compile reply templates."""
    return _ENV


def _text(v: Any) -> str | None:
    """Strip a text value; empty → None. Non-strings are kept for the type check."""
    if v is None:
        return None
    if isinstance(v, str):
        v = v.strip()
        return v or None
    return v


def _str_field(
    data: Mapping[str, Any],
    name: str,
    c: _Collector,
    label: str,
    *,
    required: bool = False,
    max_len: int = 2000,
) -> str | None:
    value = _text(data.get(name))
    if value is None:
        if required:
            c.add(name, f"{label}を入力してください。")
        return None
    if not isinstance(value, str):
        c.add(name, f"{label}は文字で入力してください。")
        return None
    if len(value) > max_len:
        c.add(name, f"{label}は{max_len}文字以内にしてください（いま{len(value)}文字）。")
    return value


def _bool_field(data: Mapping[str, Any], name: str, c: _Collector, default: bool) -> bool:
    value = data.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "1", "yes", "on", "はい"}:
        return True
    if isinstance(value, str) and value.strip().lower() in {
        "false",
        "0",
        "no",
        "off",
        "いいえ",
        "",
    }:
        return False
    c.add(name, "「はい」か「いいえ」で指定してください。")
    return default


def _list_field(data: Mapping[str, Any], name: str, c: _Collector) -> list[Any]:
    value = data.get(name)
    if value is None or value == "":
        return []
    if isinstance(value, str):  # admin forms may send "a, b" or "a\nb"
        return [v.strip() for v in re.split(r"[,、\n]", value) if v.strip()]
    if isinstance(value, list | tuple):
        return list(value)
    c.add(name, "一覧（リスト）で指定してください。")
    return []


def _ids_field(
    data: Mapping[str, Any], name: str, c: _Collector, known: Mapping[str, str], label: str
) -> tuple[str, ...]:
    out: list[str] = []
    for item in _list_field(data, name, c):
        item = str(item).strip()
        if item not in known:
            c.add(name, f"{label}「{item}」は分類表にありません。")
        elif item not in out:
            out.append(item)
    return tuple(out)


def _check_id(data: Mapping[str, Any], c: _Collector) -> str:
    value = _text(data.get("id"))
    if value is None:
        c.add("id", "IDを入力してください。")
        return ""
    value = str(value)
    if not ID_RE.match(value):
        c.add(
            "id",
            "IDは半角の小文字英数字と「_ . -」で、80文字以内にしてください"
            "（例: sample_city_care）。",
        )
    return value


def _unknown_fields(data: Mapping[str, Any], allowed: tuple[str, ...], c: _Collector) -> None:
    for key in data:
        if key not in allowed:
            c.add(str(key), "この項目名は使えません（書き間違いがないか確認してください）。")


def normalize_phone(value: str) -> str:
    """Full-width digits and dashes to ASCII, spaces removed (０１２０ー… → 0120-…)."""
    value = unicodedata.normalize("NFKC", value)
    value = re.sub(r"[‐‑‒–—―ー−－]", "-", value)
    return re.sub(r"\s+", "", value)


def phone_problem(phone: str) -> str | None:
    """Return why ``phone`` is not a valid Japanese public number, or None when it is."""
    if phone in SHORT_NUMBERS or _HASH_CODE_RE.match(phone):
        return None
    if phone.isdigit() and len(phone) == 3:
        return f"3桁の番号は {'・'.join(sorted(SHORT_NUMBERS))} だけが使えます。"
    if phone.startswith("#"):
        return "短縮ダイヤルは「#」と数字4桁で入力してください（例: #9110）。"
    digits = phone.replace("-", "")
    if not _PHONE_RE.match(phone) or phone.startswith("00") or len(digits) not in (10, 11):
        return (
            "電話番号の形式が正しくありません。0から始まる10桁か11桁（ハイフン可）、"
            "または #9110 のような短縮ダイヤル、110・119・189・188 を入力してください。"
        )
    return None


def _parse_day(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and 0 <= value <= 7:
        return value
    if isinstance(value, str):
        v = value.strip()
        if v.isdigit() and 0 <= int(v) <= 7:
            return int(v)
        if len(v) == 1 and v in DAY_NAMES:
            return DAY_NAMES.index(v)
    return None


def _parse_hours(data: Mapping[str, Any], c: _Collector) -> tuple[HoursRule, ...]:
    rules: list[HoursRule] = []
    for i, raw in enumerate(_list_field(data, "hours", c)):
        where = f"hours[{i + 1}]"
        if isinstance(raw, HoursRule):
            raw = {"days": list(raw.days), "opens": raw.opens, "closes": raw.closes}
        if not isinstance(raw, Mapping):
            c.add(where, "受付時間は「曜日・開始・終了」の組で指定してください。")
            continue
        extra = set(raw) - {"days", "opens", "closes"}
        if extra:
            c.add(where, f"受付時間に使えない項目があります: {', '.join(sorted(map(str, extra)))}")
        days_raw = raw.get("days")
        if isinstance(days_raw, str):
            days_raw = list(days_raw.replace(",", "").replace("、", "").replace(" ", ""))
        days: list[int] = []
        if not isinstance(days_raw, list | tuple) or not days_raw:
            c.add(f"{where}.days", "曜日を1つ以上指定してください（月火水木金土日祝）。")
        else:
            for d in days_raw:
                day = _parse_day(d)
                if day is None:
                    c.add(f"{where}.days", f"曜日「{d}」がわかりません（月火水木金土日祝）。")
                elif day not in days:
                    days.append(day)
        times: dict[str, str] = {}
        for key, label in (("opens", "開始時刻"), ("closes", "終了時刻")):
            value = raw.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                # YAML 1.1 reads an unquoted 09:00 as a sexagesimal number of minutes.
                value = f"{value // 60:02d}:{value % 60:02d}"
            value = unicodedata.normalize("NFKC", str(value or "")).strip()
            if len(value) == 4 and value[1] == ":":
                value = "0" + value
            if not _TIME_RE.match(value):
                c.add(
                    f"{where}.{key}", f"{label}は「09:00」のように24時間表記で入力してください。"
                )
            times[key] = value
        if times.get("opens") == times.get("closes") and times.get("opens"):
            c.add(
                where, "開始時刻と終了時刻が同じです。24時間受付なら「24時間」を選んでください。"
            )
        rules.append(HoursRule(tuple(sorted(days)), times["opens"], times["closes"]))
    return tuple(rules)


def parse_resource(
    data: Mapping[str, Any] | Resource, taxonomy: Taxonomy | None = None
) -> Resource:
    """Check a resource and return it as a value, normalising phone numbers and lists.

    Args:
        data: a mapping with the fields of :class:`knowledge.types.Resource` (YAML or form),
            or a Resource to re-check.
        taxonomy: the taxonomy to check ids against; defaults to the shipped one.

    Returns:
        The checked Resource.

    Raises:
        ValidationError: one entry per problem found.
    """
    if isinstance(data, Resource):
        from knowledge.records import resource_to_dict

        data = resource_to_dict(data)
    tx = taxonomy or load_taxonomy()
    c = _Collector()
    _unknown_fields(data, RESOURCE_FIELDS, c)
    rid = _check_id(data, c)
    name = _str_field(data, "name", c, "名前", required=True, max_len=100)
    kind = _text(data.get("kind"))
    if kind is None:
        c.add("kind", "種類を選んでください。")
    elif kind not in tx.resource_kinds:
        c.add("kind", f"種類「{kind}」は分類表にありません。")
    description = _str_field(data, "description", c, "説明", required=True, max_len=500)
    topics = _ids_field(data, "topics", c, tx.topics, "相談内容")
    audiences = _ids_field(data, "audiences", c, tx.audiences, "相談する人")
    age_groups = _ids_field(data, "age_groups", c, tx.age_groups, "年代")
    coverage = _text(data.get("coverage")) or "national"
    if coverage not in COVERAGES:
        c.add(
            "coverage",
            "対象地域は national（全国）・prefecture（都道府県）・"
            "municipality（市区町村）のどれかです。",
        )
    pref = _text(data.get("prefecture_code"))
    muni = _text(data.get("municipality_code"))
    pref = None if pref is None else str(pref).zfill(2)
    muni = None if muni is None else str(muni)
    sample_flag = _bool_field(data, "sample", _Collector(), False)
    # "99" is the fictional サンプル県 of the shipped sample data; never a real prefecture.
    if pref is not None and not _PREF_RE.match(pref) and not (sample_flag and pref == "99"):
        c.add(
            "prefecture_code", "都道府県コードは01〜47の2桁で入力してください（例: 東京都は13）。"
        )
    if muni is not None and not _MUNI_RE.match(muni):
        c.add("municipality_code", "市区町村コードは5桁か6桁の数字で入力してください。")
    if coverage == "prefecture" and pref is None:
        c.add("prefecture_code", "対象が都道府県のときは都道府県コードを入力してください。")
    if coverage == "municipality" and muni is None:
        c.add("municipality_code", "対象が市区町村のときは市区町村コードを入力してください。")
    if coverage == "national" and (pref or muni):
        c.add("coverage", "全国の窓口には都道府県・市区町村コードを入れないでください。")
    phone = _str_field(data, "phone", c, "電話番号", max_len=20)
    if phone is not None:
        phone = normalize_phone(phone)
        problem = phone_problem(phone)
        if problem:
            c.add("phone", problem)
    url = _str_field(data, "url", c, "URL", max_len=500)
    if url is not None and not _URL_RE.match(url):
        c.add("url", "URLは http:// か https:// で始まる形で入力してください。")
    hours = _parse_hours(data, c)
    always_open = _bool_field(data, "always_open", c, False)
    if always_open and hours:
        c.add("hours", "24時間受付の窓口には曜日ごとの受付時間を入れないでください。")
    hours_note = _str_field(data, "hours_note", c, "受付時間の説明", max_len=300)
    how: list[str] = []
    for item in _list_field(data, "how", c):
        item = str(item).strip()
        if item not in HOW_OPTIONS:
            c.add("how", f"相談方法「{item}」は使えません（{'・'.join(HOW_OPTIONS)}）。")
        elif item not in how:
            how.append(item)
    notes = _str_field(data, "notes", c, "注意書き", max_len=500)
    source_url = _str_field(data, "source_url", c, "出典URL", max_len=500)
    if source_url is not None and not _URL_RE.match(source_url):
        c.add("source_url", "出典URLは http:// か https:// で始まる形で入力してください。")
    verified_on = _text(data.get("verified_on"))
    if isinstance(verified_on, date):
        verified_on = verified_on.isoformat()
    if verified_on is not None:
        try:
            date.fromisoformat(str(verified_on))
            verified_on = str(verified_on)
        except ValueError:
            c.add("verified_on", "確認日は「2026-11-25」の形で入力してください。")
    verification_note = _str_field(data, "verification_note", c, "確認メモ", max_len=500)
    sample = _bool_field(data, "sample", c, False)
    active = _bool_field(data, "active", c, True)
    if not sample:
        # Every real entry must say where it was checked and when; only samples are exempt.
        if source_url is None:
            c.add(
                "source_url",
                "実在の窓口には、確認したページ（出典URL）を入力してください。"
                "例として載せる場合は「サンプル」にしてください。",
            )
        if verified_on is None:
            c.add("verified_on", "出典のページを確認した日を入力してください。")
    if not (phone or url) and not notes:
        c.add(
            "notes",
            "電話番号もURLもない案内には、お近くの窓口の探し方を「注意書き」に書いてください。",
        )
    c.raise_if_any()
    return Resource(
        id=rid,
        name=str(name),
        kind=str(kind),
        description=str(description),
        topics=topics,
        audiences=audiences,
        age_groups=age_groups,
        coverage=coverage,
        prefecture_code=pref,
        municipality_code=muni,
        phone=phone,
        url=url,
        hours=hours,
        always_open=always_open,
        hours_note=hours_note,
        how=tuple(how),
        notes=notes,
        source_url=source_url,
        verified_on=verified_on,
        verification_note=verification_note,
        sample=sample,
        active=active,
    )


def template_problem(text: str) -> str | None:
    """Compile a jinja2 template in the sandbox; return a Japanese message on a syntax error."""
    try:
        _ENV.from_string(text)
    except TemplateSyntaxError as exc:
        return f"テンプレートの書き方に誤りがあります（{exc.lineno}行目）: {exc.message}"
    return None


def parse_template(data: Mapping[str, Any] | Template) -> Template:
    """Check a reply template (id, text compiled with jinja2) and return it.

    Raises:
        ValidationError: missing id/text or a template that does not compile.
    """
    if isinstance(data, Template):
        data = {"id": data.id, "description": data.description, "text": data.text}
    c = _Collector()
    _unknown_fields(data, TEMPLATE_FIELDS, c)
    tid = _check_id(data, c)
    description = _str_field(data, "description", c, "説明", max_len=300) or ""
    text = data.get("text")
    if not isinstance(text, str) or not text.strip():
        c.add("text", "本文を入力してください。")
        text = ""
    elif len(text) > 5000:
        c.add("text", "本文は5000文字以内にしてください。")
    else:
        problem = template_problem(text)
        if problem:
            c.add("text", problem)
    c.raise_if_any()
    return Template(id=tid, text=text, description=description)


def parse_faq(data: Mapping[str, Any] | FaqEntry, taxonomy: Taxonomy | None = None) -> FaqEntry:
    """Check a FAQ entry (question variants, answer, topics) and return it.

    Raises:
        ValidationError: missing questions/answer or unknown topic ids.
    """
    if isinstance(data, FaqEntry):
        data = {
            "id": data.id,
            "questions": list(data.questions),
            "answer": data.answer,
            "topics": list(data.topics),
            "active": data.active,
        }
    tx = taxonomy or load_taxonomy()
    c = _Collector()
    _unknown_fields(data, FAQ_FIELDS, c)
    fid = _check_id(data, c)
    questions: list[str] = []
    raw_q = data.get("questions")
    if isinstance(raw_q, str):
        raw_q = raw_q.splitlines()
    for q in raw_q if isinstance(raw_q, list | tuple) else []:
        q = str(q).strip()
        if q and q not in questions:
            questions.append(q)
    if not questions:
        c.add("questions", "質問の言い方を1つ以上入力してください。")
    answer = _str_field(data, "answer", c, "回答", required=True, max_len=2000)
    topics = _ids_field(data, "topics", c, tx.topics, "相談内容")
    active = _bool_field(data, "active", c, True)
    c.raise_if_any()
    return FaqEntry(
        id=fid, questions=tuple(questions), answer=str(answer), topics=topics, active=active
    )
