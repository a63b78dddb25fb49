"""Flow buttons: a topic, an answer to a question (who / age / area)."""

from __future__ import annotations

from bot.dialogue import flow
from bot.dialogue.registry import Handler, on
from bot.dialogue.turn import Turn

_SLOT_VALUES = {
    "audience": ("self", "family", "supporter", "resident", "skip"),
    "age_group": ("minor", "adult", "elderly", "skip"),
    "area": ("skip",),
}


@on("postback", "topic")
def topic(turn: Turn, value: str) -> None:
    """A topic button (``topic:none`` → the full menu)."""
    if value != "none" and value not in turn.flow.all_topics:
        turn.say("unknown_choice")
        return
    flow.choose_topic(turn, value)


def _slot_handler(slot: str) -> Handler:
    def handle(turn: Turn, value: str) -> None:
        if value not in _SLOT_VALUES[slot]:
            turn.say("unknown_choice")
            return
        flow.set_slot(turn, slot, value)

    handle.__doc__ = f"An answer button for {slot}."
    return handle


for _slot in _SLOT_VALUES:
    on("postback", _slot)(_slot_handler(_slot))
