"""Commands understood at any point: 人と話したい, 最初から, 履歴を消して, ヘルプ, 続きから."""

from __future__ import annotations

from bot.dialogue import flow
from bot.dialogue.handlers.crisis import crisis_referrals
from bot.dialogue.registry import on
from bot.dialogue.replies import EndReply, HandoffNotice
from bot.dialogue.state import OPEN, RETURN, DialogueState
from bot.dialogue.turn import Turn


@on("command", "human")
def human(turn: Turn, value: str) -> None:
    """Until counselors join the chat: say so, and give phone lines with their hours."""
    turn.count("handoff", "requested")
    turn.add(HandoffNotice(status="unavailable", text=turn.renderer.text("handoff_unavailable")))
    state = turn.state
    if state.crisis != "none":
        referrals = crisis_referrals(turn, ())
    else:
        by_topic = [r for r in turn.route(state.slots, limit=5) if r.resource.phone]
        phones = [r for r in turn.route(state.slots, limit=10) if r.resource.phone]
        wanted = [r for r in phones if r.resource.kind in turn.flow.phone_kinds]
        referrals = []
        for r in [*by_topic[:2], *wanted, *crisis_referrals(turn, ())]:
            if r.resource.id not in {x.resource.id for x in referrals}:
                referrals.append(r)
    if referrals:
        turn.add(turn.renderer.resources(referrals[:3], now=turn.when))
    turn.ask("anything_else", [("btn_more", "after:more"), ("btn_done", "after:done")])


@on("command", "restart")
def restart(turn: Turn, value: str) -> None:
    """Forget the worry (keep consent); a message held over the idle gap is answered anew."""
    pending = turn.state.pending if turn.state.phase == RETURN else None
    turn.state = turn.state.restart()
    if pending is not None and pending.topics:
        flow.apply_message(turn, pending)
        return
    turn.ask("open_prompt", turn.topic_choices(turn.flow.start_topics))


@on("command", "delete")
def delete(turn: Turn, value: str) -> None:
    """Delete the conversation now and confirm; the next message starts afresh."""
    turn.delete_requested = True
    turn.state = DialogueState()
    turn.add(EndReply(text=turn.renderer.text("deleted")))


@on("command", "help")
def help_(turn: Turn, value: str) -> None:
    """What the desk does and the words that always work."""
    turn.ask("help", [("btn_human", "cmd:human"), ("btn_restart", "cmd:restart")])


@on("command", "resume")
def resume(turn: Turn, value: str) -> None:
    """Continue where the conversation stood, with anything said on return."""
    state = turn.state
    pending = state.pending
    turn.state = state.with_(phase=OPEN, pending=None)
    turn.say("resumed")
    if pending is not None and pending.topics:
        flow.apply_message(turn, pending)
    elif turn.state.slots.topics:
        turn.state = turn.state.with_(asked=tuple(a for a in state.asked if a != state.asking))
        flow.advance(turn)
    else:
        turn.ask("open_prompt", turn.topic_choices(turn.flow.start_topics))


@on("phase", RETURN)
def returned(turn: Turn, value: str) -> None:
    """Back after the idle timeout: offer 続きから / 最初から."""
    turn.ask("return_greeting", [("btn_resume", "cmd:resume"), ("btn_restart", "cmd:restart")])


@on("postback", "cmd")
def command_button(turn: Turn, value: str) -> None:
    """A button that stands for a command."""
    from bot.dialogue.registry import lookup

    handler = lookup("command", value)
    if handler is None:
        turn.say("unknown_choice")
        return
    handler(turn, "")


@on("postback", "after")
def after_answer(turn: Turn, value: str) -> None:
    """他に気になることは？ — another worry, or finished."""
    if value == "done":
        turn.say("done")
        turn.state = turn.state.with_(phase=OPEN)
        return
    turn.state = turn.state.with_(phase=OPEN)
    turn.ask("open_prompt", turn.topic_choices(turn.flow.start_topics))
