"""Crisis overrides every state at every turn: emergency and crisis lines, then a person."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from bot.dialogue import flow
from bot.dialogue.registry import on
from bot.dialogue.state import Slots
from bot.dialogue.turn import Turn
from knowledge.types import Referral, Resource

logger = logging.getLogger(__name__)

_LEVELS = ("none", "concern", "urgent")


def crisis_kinds(turn: Turn, categories: Sequence[str], level: str) -> list[str]:
    """Resource kinds to show for a crisis: 110/119 first only when the danger is now."""
    table = turn.flow.crisis_kinds
    kinds: list[str] = list(table["urgent"]) if level == "urgent" else []
    for category, listed in table.items():  # the table's order, most specific first
        if category in categories:
            kinds += listed
    kinds += table["default"]
    return list(dict.fromkeys(kinds))


def crisis_referrals(turn: Turn, categories: Sequence[str]) -> list[Referral]:
    """Up to three reachable lines for the crisis: one per kind of ``crisis_kinds`` first.

    Within a kind, lines open now come first (a closed line is still listed with its hours).
    """
    level = turn.state.crisis if turn.state.crisis != "none" else "concern"
    routed = turn.route(turn.state.slots, crisis=level, limit=10)
    reasons = {r.resource.id: r.reason for r in routed}
    list_resources = getattr(turn.kb, "list_resources", None)
    per_kind: list[list[Resource]] = []
    for kind in crisis_kinds(turn, categories, level):
        found = [r.resource for r in routed if r.resource.kind == kind and r.resource.phone]
        if list_resources is not None:
            # By id: the routed copy may carry an unsaved edit (admin preview).
            seen = {r.id for r in found}
            found += [
                r for r in list_resources(kind=kind, active=True) if r.phone and r.id not in seen
            ]
        found.sort(key=lambda r: turn.renderer.open_now(r, turn.when) is not True)
        per_kind.append(found)
    chosen: list[Resource] = []
    for depth in range(3):
        for found in per_kind:
            if len(found) > depth and found[depth] not in chosen and len(chosen) < 3:
                chosen.append(found[depth])
    return [
        Referral(resource=r, reason=reasons.get(r.id, ""), rank=i)
        for i, r in enumerate(chosen, start=1)
    ]


def escalate(turn: Turn, level: str, categories: Sequence[str], said: Slots | None) -> None:
    """The crisis reply: words of concern, emergency/crisis lines, then the counselor offer."""
    state = turn.state
    highest = max(level, state.crisis, key=_LEVELS.index)
    slots = flow.merge(state.slots, said, False) if said is not None else state.slots
    turn.state = state.with_(crisis=highest, slots=slots, pending=None)
    turn.count("crisis", level)
    logger.info("crisis reply (level %s)", level)
    turn.say("crisis_urgent" if level == "urgent" else "crisis_concern")
    referrals = crisis_referrals(turn, categories)
    if referrals:
        intro = turn.renderer.text("resources_intro_crisis")
        turn.add(turn.renderer.resources(referrals, intro=intro, now=turn.when))
    turn.ask("crisis_offer", [("btn_human", "cmd:human")])


@on("signal", "crisis")
def crisis(turn: Turn, value: str) -> None:
    """Registered entry for the engine; the engine calls :func:`escalate` with the analysis."""
    escalate(turn, value or "concern", (), None)
