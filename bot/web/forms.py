"""Admin form values ↔ knowledge values: what staff type becomes what the KB validates."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from multidict import MultiDictProxy

from knowledge.models import FaqEntry, Revision, Template
from knowledge.records import resource_to_dict
from knowledge.types import HoursRule, Resource
from knowledge.validation import DAY_NAMES, ValidationError

FormData = MultiDictProxy[Any]

RESOURCE_LABELS = {
    "id": "ID",
    "name": "名前",
    "kind": "種類",
    "description": "説明",
    "topics": "相談内容",
    "audiences": "相談する人",
    "age_groups": "年代",
    "coverage": "対象地域",
    "prefecture_code": "都道府県コード",
    "municipality_code": "市区町村コード",
    "phone": "電話番号",
    "url": "URL",
    "hours": "受付時間",
    "always_open": "24時間受付",
    "hours_note": "受付時間の説明",
    "how": "相談方法",
    "notes": "注意書き",
    "source_url": "出典URL",
    "verified_on": "確認日",
    "verification_note": "確認メモ",
    "sample": "サンプル",
    "active": "有効",
}
TEMPLATE_LABELS = {"id": "ID", "description": "説明", "text": "本文"}
FAQ_LABELS = {
    "id": "ID",
    "questions": "質問の言い方",
    "answer": "回答",
    "topics": "相談内容",
    "active": "有効",
}
ACTION_LABELS = {
    "create": "作成",
    "update": "更新",
    "deactivate": "無効化",
    "delete": "削除",
    "restore": "復元",
    "import": "取り込み",
    "disable": "無効化",
    "enable": "有効化",
    "password": "パスワード変更",
}
_LIST_FIELDS = ("topics", "audiences", "age_groups", "how")
_BOOL_FIELDS = ("always_open", "sample", "active")
_HOURS_LINE = re.compile(r"^\s*(\S+)\s+(\d{1,2}:\d{2})\s*[-〜~～]\s*(\d{1,2}:\d{2})\s*$")


def _text(form: FormData, name: str) -> str:
    value = form.get(name, "")
    return value.strip() if isinstance(value, str) else ""


def _strings(form: FormData, name: str) -> list[str]:
    return [v.strip() for v in form.getall(name, []) if isinstance(v, str) and v.strip()]


def hours_to_text(hours: tuple[HoursRule, ...]) -> str:
    """Opening hours as editable lines, e.g. ``月火水木金 09:00-17:00``."""
    return "\n".join(
        f"{''.join(DAY_NAMES[d] for d in h.days)} {h.opens}-{h.closes}" for h in hours
    )


def text_to_hours(text: str) -> list[Any]:
    """Lines like ``月火水木金 09:00-17:00`` → hour mappings for validation.

    A line that does not fit the pattern is passed on as text, so the knowledge base
    reports it with its own message.
    """
    out: list[Any] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        m = _HOURS_LINE.match(line.replace("：", ":"))
        out.append({"days": m.group(1), "opens": m.group(2), "closes": m.group(3)} if m else line)
    return out


@dataclass(frozen=True, slots=True)
class ResourceForm:
    """Values of the resource form as shown (strings, lists of ids, booleans)."""

    values: dict[str, Any]

    @classmethod
    def from_resource(cls, r: Resource) -> ResourceForm:
        """The form pre-filled with a stored resource."""
        values = resource_to_dict(r, full=True)
        values["hours"] = hours_to_text(r.hours)
        for name, value in list(values.items()):
            if value is None:
                values[name] = ""
        return cls(values)

    @classmethod
    def empty(cls) -> ResourceForm:
        """A new resource's form."""
        values: dict[str, Any] = {k: "" for k in RESOURCE_LABELS}
        values.update({k: [] for k in _LIST_FIELDS})
        values.update(always_open=False, sample=False, active=True, coverage="national")
        return cls(values)

    @classmethod
    def from_post(cls, form: FormData, resource_id: str | None = None) -> ResourceForm:
        """Values as posted; ``resource_id`` fixes the id of an existing resource."""
        values: dict[str, Any] = {}
        for name in RESOURCE_LABELS:
            if name in _LIST_FIELDS:
                values[name] = _strings(form, name)
            elif name in _BOOL_FIELDS:
                values[name] = form.get(name) in ("1", "on", "true")
            elif name == "hours":
                raw = form.get("hours", "")
                values[name] = raw if isinstance(raw, str) else ""
            else:
                values[name] = _text(form, name)
        if resource_id is not None:
            values["id"] = resource_id
        return cls(values)

    def data(self) -> dict[str, Any]:
        """The mapping handed to ``KnowledgeBase.save_resource`` / ``parse_resource``."""
        out = dict(self.values)
        out["hours"] = text_to_hours(str(self.values.get("hours", "")))
        return out


def template_data(form: FormData, template_id: str) -> dict[str, Any]:
    """The posted template fields (the id comes from the URL)."""
    text = form.get("text", "")
    return {
        "id": template_id,
        "description": _text(form, "description"),
        # Line endings from browsers are CRLF; the stored templates use LF.
        "text": text.replace("\r\n", "\n") if isinstance(text, str) else "",
    }


def faq_data(form: FormData, faq_id: str | None = None) -> dict[str, Any]:
    """The posted FAQ fields: one question variant per line."""
    questions = _text(form, "questions")
    return {
        "id": faq_id if faq_id is not None else _text(form, "id"),
        "questions": [q.strip() for q in questions.splitlines() if q.strip()],
        "answer": _text(form, "answer").replace("\r\n", "\n"),
        "topics": _strings(form, "topics"),
        "active": form.get("active") in ("1", "on", "true"),
    }


def faq_values(f: FaqEntry) -> dict[str, Any]:
    """A FAQ entry as form values."""
    return {
        "id": f.id,
        "questions": "\n".join(f.questions),
        "answer": f.answer,
        "topics": list(f.topics),
        "active": f.active,
    }


def template_values(t: Template) -> dict[str, Any]:
    """A template as form values."""
    return {"id": t.id, "description": t.description, "text": t.text}


def field_errors(exc: ValidationError) -> dict[str, list[str]]:
    """Group validation messages by form field (``hours[2].opens`` → ``hours``)."""
    out: dict[str, list[str]] = {}
    for field, message in exc.errors:
        base = re.split(r"[\[.]", field, maxsplit=1)[0] or "form"
        out.setdefault(base, []).append(message)
    return out


def show(value: Any) -> str:
    """A stored value as readable text for history and diffs."""
    if value is None or value == "" or value == []:
        return "（なし）"
    if isinstance(value, bool):
        return "はい" if value else "いいえ"
    if isinstance(value, list):
        if value and isinstance(value[0], Mapping):
            return "\n".join(
                f"{h.get('days', '')} {h.get('opens', '')}-{h.get('closes', '')}" for h in value
            )
        return "、".join(str(v) for v in value)
    return str(value)


@dataclass(frozen=True, slots=True)
class DiffRow:
    """One field of a revision: before and after as text."""

    field: str
    label: str
    before: str
    after: str
    changed: bool


def revision_rows(rev: Revision, labels: Mapping[str, str]) -> list[DiffRow]:
    """Field-by-field comparison of a revision's before and after states."""
    before = rev.before or {}
    after = rev.after or {}
    rows = []
    for name in dict.fromkeys([*labels, *before, *after]):
        if name not in before and name not in after:
            continue
        b, a = before.get(name), after.get(name)
        rows.append(
            DiffRow(
                name,
                labels.get(name, name),
                show(b) if rev.before is not None else "",
                show(a) if rev.after is not None else "",
                b != a,
            )
        )
    return rows
