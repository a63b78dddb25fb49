"""The consultation flow: merge what a message said, ask one missing piece, or answer."""

from __future__ import annotations

import logging
from dataclasses import replace

from bot.dialogue.state import ANSWERED, ASK, CONFIRM, OPEN, Slots
from bot.dialogue.turn import Turn

logger = logging.getLogger(__name__)

# Values tried when checking whether an unknown piece would change the answer.
_PROBE_VALUES = {
    "audience": ("self", "family", "supporter"),
    "age_group": ("minor", "adult", "elderly"),
}


def is_known(slots: Slots, slot: str) -> bool:
    """Whether the conversation already knows ``slot``."""
    if slot == "area":
        return slots.area is not None
    return getattr(slots, slot) not in ("unknown", "", None)


def changes_answer(turn: Turn, slot: str) -> bool:
    """Whether knowing ``slot`` could change the referrals (so it is worth asking).

    Audience and age group are probed against the knowledge base: if every value gives the
    same referrals, the question is skipped. The area matters when a local window fits.
    """
    slots = turn.state.slots
    if slot == "area":
        return any(r.resource.kind in turn.flow.local_kinds for r in turn.route(slots))
    seen: set[tuple[str, ...]] = set()
    for value in _PROBE_VALUES[slot]:
        probe = replace(slots, **{slot: value})
        seen.add(tuple(r.resource.id for r in turn.route(probe)))
        if len(seen) > 1:
            return True
    return False


def merge(old: Slots, new: Slots, replace_topics: bool) -> Slots:
    """Combine what was known with what a new message said."""
    if new.topics:
        if replace_topics:
            topics = new.topics
        else:
            topics = old.topics + tuple(t for t in new.topics if t not in old.topics)
    else:
        topics = old.topics
    return Slots(
        topics=topics[:5],
        audience=new.audience if new.audience != "unknown" else old.audience,
        age_group=new.age_group if new.age_group != "unknown" else old.age_group,
        area=new.area or old.area,
        confident=True,
        in_scope=True,
    )


def apply_message(turn: Turn, new: Slots) -> None:
    """Handle what a free-text message said, whatever the phase (crisis is handled before)."""
    state = turn.state
    if state.phase == ASK and state.asking:
        _answer_question(turn, new)
        return
    if not new.topics:
        # "self" is the default reading of many sentences; only explicit details count.
        has_detail = (
            new.area is not None
            or new.age_group != "unknown"
            or new.audience in ("family", "supporter", "resident")
        )
        if state.slots.topics and has_detail:
            # 「東京です」「母のことです」 after an answer: refine and answer again.
            turn.state = state.with_(slots=merge(state.slots, new, False))
            advance(turn)
        elif not new.in_scope and state.phase != CONFIRM:
            # Inside the fallback an unclear reply continues the fallback instead.
            turn.count("scope", "out")
            turn.say("out_of_scope")
            turn.ask("anything_else", _after_choices(turn))
            turn.state = turn.state.with_(phase=OPEN if not state.slots.topics else state.phase)
        else:
            fallback(turn, ())
        return
    if not new.confident:
        fallback(turn, new.topics[:3], pending=new)
        return
    # A new worry after an answer replaces the topics; who/age/area still hold.
    replace_topics = state.phase in (ANSWERED, OPEN, CONFIRM)
    turn.state = state.with_(
        slots=merge(state.slots, new, replace_topics), fallback=0, candidates=()
    )
    advance(turn)


def _answer_question(turn: Turn, new: Slots) -> None:
    state = turn.state
    slot = state.asking or ""
    merged = merge(state.slots, new, False)
    if not is_known(new, slot) and not new.topics:
        logger.debug("question %s skipped", slot)
    turn.state = state.with_(slots=merged, asking=None, phase=OPEN)
    advance(turn)


def set_slot(turn: Turn, slot: str, value: str) -> None:
    """A button answered a question (``skip`` leaves the piece unknown)."""
    state = turn.state
    slots = state.slots
    if value != "skip" and slot in ("audience", "age_group"):
        slots = replace(slots, **{slot: value})
    asked = state.asked if slot in state.asked else (*state.asked, slot)
    turn.state = state.with_(slots=slots, asked=asked, asking=None, phase=OPEN)
    advance(turn)


def advance(turn: Turn) -> None:
    """Ask the next missing piece that changes the answer, or answer."""
    state = turn.state
    if not state.slots.topics:
        fallback(turn, ())
        return
    for slot in turn.flow.slot_order:
        if slot in state.asked or is_known(state.slots, slot):
            continue
        if changes_answer(turn, slot):
            question = turn.flow.slots[slot]
            turn.state = state.with_(
                phase=ASK, asking=slot, asked=(*state.asked, slot), fallback=0
            )
            turn.ask(question.template, [(label, f"{slot}:{v}") for label, v in question.choices])
            return
    answer(turn)


def answer(turn: Turn) -> None:
    """Give up to three referrals, then ask 他に気になることは？."""
    slots = turn.state.slots
    referrals = turn.route(slots)
    turn.state = turn.state.with_(phase=ANSWERED, asking=None, fallback=0, candidates=())
    for topic in slots.topics:
        turn.count("topic", topic)
    turn.count("audience", slots.audience)
    turn.count("age_group", slots.age_group)
    if not referrals:
        turn.say("answer_none")
    else:
        labels = [turn.renderer.topic_label(t) for t in slots.topics[:2]]
        intro = turn.renderer.text("answer_intro", labels=labels)
        turn.add(turn.renderer.resources(referrals, intro=intro, now=turn.when))
    turn.ask("anything_else", _after_choices(turn))


def _after_choices(turn: Turn) -> list[tuple[str, str]]:
    return [("btn_more", "after:more"), ("btn_human", "cmd:human"), ("btn_done", "after:done")]


def fallback(turn: Turn, candidates: tuple[str, ...], pending: Slots | None = None) -> None:
    """Two-stage fallback: first confirm the guess (or ask to rephrase), then the menu.

    Never routes on a guess: the person confirms with a button first.
    """
    state = turn.state
    turn.count("fallback", str(state.fallback + 1))
    if state.fallback == 0:
        if candidates:
            labels = [turn.renderer.topic_label(t) for t in candidates]
            items = [*turn.topic_choices(candidates), ("btn_not_these", "topic:none")]
            turn.ask("confirm_topic", items, labels=labels)
        else:
            items = [*turn.topic_choices(turn.flow.start_topics), ("btn_human", "cmd:human")]
            turn.ask("fallback_rephrase", items)
        # Keep who/age/area from the unclear message so they are not asked again.
        slots = merge(state.slots, replace(pending, topics=()), False) if pending else state.slots
        turn.state = state.with_(phase=CONFIRM, fallback=1, candidates=candidates, slots=slots)
        return
    menu(turn)


def menu(turn: Turn) -> None:
    """Fallback stage two: every topic as a button, and a person."""
    items = [*turn.topic_choices(turn.flow.menu_topics), ("btn_human", "cmd:human")]
    turn.ask("fallback_menu", items)
    turn.state = turn.state.with_(phase=CONFIRM, fallback=2, candidates=())


def choose_topic(turn: Turn, topic: str) -> None:
    """A topic button was pressed (``none`` → the menu)."""
    if topic == "none":
        menu(turn)
        return
    state = turn.state
    replace_topics = state.phase != ASK
    new = Slots(topics=(topic,))
    turn.state = state.with_(
        slots=merge(state.slots, new, replace_topics), fallback=0, candidates=()
    )
    advance(turn)
