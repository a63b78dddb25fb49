"""Turn templates and referrals into reply values (wording lives in the knowledge base)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

from bot.dialogue.replies import Choice, ChoicesReply, ResourceCard, ResourcesReply, TextReply
from knowledge.types import HoursRule, Referral, Resource

logger = logging.getLogger(__name__)

JST = timezone(timedelta(hours=9))
_DAY_NAMES = "月火水木金土日祝"


class TemplateSource(Protocol):
    """What the renderer needs from the knowledge base."""

    def render(self, template_id: str, **context: Any) -> str:
        """Render one template."""


def format_hours(resource: Resource) -> str | None:
    """Opening hours as shown on a card, e.g. ``24時間・年中無休`` or ``月〜金 9:00〜17:00``."""
    if resource.always_open:
        return "24時間・年中無休"
    if resource.hours_note:
        return resource.hours_note
    if not resource.hours:
        return None
    return "、".join(_format_rule(rule) for rule in resource.hours)


def _format_rule(rule: HoursRule) -> str:
    days = sorted(set(rule.days))
    weekdays = [d for d in days if d < 7]
    if weekdays and weekdays == list(range(weekdays[0], weekdays[-1] + 1)) and len(weekdays) > 2:
        label = f"{_DAY_NAMES[weekdays[0]]}〜{_DAY_NAMES[weekdays[-1]]}"
    else:
        label = "・".join(_DAY_NAMES[d] for d in weekdays)
    if 7 in days:
        label += "・祝" if label else "祝"
    return f"{label} {rule.opens.lstrip('0') or '0'}〜{rule.closes.lstrip('0') or '0'}".strip()


def is_open(resource: Resource, now: datetime) -> bool | None:
    """Whether the resource is open at ``now`` (None when its hours are unknown).

    Public holidays are not known here, so a weekday rule is taken at its word.
    """
    if resource.always_open:
        return True
    if not resource.hours:
        return None
    local = now.astimezone(JST)
    hm = local.strftime("%H:%M")
    return any(
        local.weekday() in rule.days and rule.opens <= hm < rule.closes for rule in resource.hours
    )


class Renderer:
    """Builds replies from template ids and referrals."""

    def __init__(
        self,
        templates: TemplateSource,
        open_now: Callable[[Resource, datetime], bool | None] | None = None,
    ) -> None:
        """Wrap the knowledge base.

        Args:
            templates: anything with ``render(template_id, **context)``.
            open_now: the knowledge base's opening check (knows public holidays);
                defaults to :func:`is_open`.
        """
        self._templates = templates
        self._open_now = open_now or is_open

    def open_now(self, resource: Resource, now: datetime) -> bool | None:
        """Whether a resource is open at ``now`` (None when unknown)."""
        return self._open_now(resource, now)

    def text(self, template_id: str, **context: Any) -> str:
        """Render a template to plain text (surrounding whitespace removed)."""
        return self._templates.render(template_id, **context).strip()

    def say(self, template_id: str, **context: Any) -> TextReply:
        """A text reply from a template."""
        return TextReply(self.text(template_id, **context))

    def choices(
        self, template_id: str, items: Iterable[tuple[str, str]], **context: Any
    ) -> ChoicesReply:
        """A prompt with buttons; ``items`` are (label template id or label, postback)."""
        built = tuple(Choice(label=self.label(label), postback=pb) for label, pb in items)
        return ChoicesReply(text=self.text(template_id, **context), items=built)

    def label(self, label: str) -> str:
        """A button label: ``btn_*`` and ``topic:<id>`` are rendered, other text kept."""
        if label.startswith("btn_"):
            return self.text(label)[:20]
        if label.startswith("topic:"):
            return self.topic_label(label.removeprefix("topic:"))
        return label[:20]

    def topic_label(self, topic: str) -> str:
        """Short Japanese label of a topic id."""
        return self.text("topic_label", topic=topic)[:20]

    def resources(
        self, referrals: Sequence[Referral], intro: str = "", now: datetime | None = None
    ) -> ResourcesReply:
        """Resource cards for up to three referrals."""
        now = now or datetime.now(JST)
        return ResourcesReply(
            items=tuple(self.card(r, now) for r in referrals[:3]),
            intro=intro,
        )

    def card(self, referral: Referral, now: datetime) -> ResourceCard:
        """One resource card."""
        res = referral.resource
        return ResourceCard(
            resource_id=res.id,
            kind=res.kind,
            name=res.name,
            description=res.description,
            reason=referral.reason,
            phone=res.phone,
            url=res.url,
            hours=format_hours(res),
            open_now=self._open_now(res, now),
            how=res.how,
            notes=res.notes,
            sample=res.sample,
        )
