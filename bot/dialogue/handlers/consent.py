"""Consent handlers: the greeting's 同意して相談する / 記録せずに相談する."""

from __future__ import annotations

from bot.dialogue import flow
from bot.dialogue.registry import on
from bot.dialogue.state import CONSENT, OPEN
from bot.dialogue.turn import Turn

CONSENT_CHOICES = (("btn_consent_yes", "consent:granted"), ("btn_consent_no", "consent:declined"))


def greeting(turn: Turn) -> None:
    """The first message: what the desk is, what is kept, 110/119, and the consent question."""
    turn.say("greeting", retention_days=turn.retention_days)
    turn.ask("consent_question", CONSENT_CHOICES)
    turn.state = turn.state.with_(phase=CONSENT)


@on("phase", CONSENT)
def before_consent(turn: Turn, value: str) -> None:
    """A message before the choice: keep what it said (in memory) and ask once more."""
    turn.say("consent_reminder")
    turn.ask("consent_question", CONSENT_CHOICES)


@on("postback", "consent")
def choose(turn: Turn, value: str) -> None:
    """Record the choice; continue with a message that came before it, if any."""
    if value not in ("granted", "declined"):
        turn.say("unknown_choice")
        return
    turn.count("consent", value)
    pending = turn.state.pending
    turn.state = turn.state.with_(consent=value, phase=OPEN, pending=None)
    if pending is not None and pending.topics:
        flow.apply_message(turn, pending)
        return
    template = "consent_granted" if value == "granted" else "consent_declined"
    turn.ask(template, turn.topic_choices(turn.flow.start_topics))
