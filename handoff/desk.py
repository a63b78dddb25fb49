"""The counseling desk: escalations, queue, access rules, relay events and audit in one place.

Access rules (who may see and work on a case):

- ``counselor``: only cases of their own office (``office_id`` of the account);
- ``admin``: every office (supervision), every opening audited like anyone else's;
- ``staff``: none — staff maintain the knowledge base, they do not read conversations.

Every opening of a case writes an audit entry, and so does every refused attempt.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlite_utils

from handoff.bus import EventBus
from handoff.escalation_store import Conflict, EscalationStore, NotFound
from handoff.models import (
    CONSENT_FULL,
    REASONS,
    CaseMessage,
    CaseSummary,
    CaseView,
    Escalation,
    Note,
    Outcome,
    QueueInfo,
    TranscriptLine,
)
from handoff.offices import Office, OfficeDirectory, load_directory
from handoff.states import ABANDONED as ABANDONED_STATE
from handoff.states import ACTIVE, CLAIMED, CLOSED, OPEN_STATES, RETURNED, WAITING
from handoff.store import ConversationStore
from intents.types import Area
from knowledge.hours import JST
from knowledge.models import User

logger = logging.getLogger(__name__)

DEFAULT_HANDLING_SECONDS = 15 * 60  # until the office has closed cases to measure
DEFAULT_ABANDON_SECONDS = 60 * 60
ALL_OFFICES = "offices"  # bus topic with the queue events of every office

__all__ = ["ALL_OFFICES", "Conflict", "Desk", "Forbidden", "NotFound", "can_access"]


class Forbidden(PermissionError):
    """The user may not see or change this case (another office, or not a counselor)."""


def can_access(user: User, escalation: Escalation) -> bool:
    """Whether ``user`` may open and work on ``escalation`` (see the module docstring)."""
    if user.disabled:
        return False
    if user.role == "admin":
        return True
    return (
        user.role == "counselor"
        and bool(user.office_id)
        and (user.office_id == escalation.office_id)
    )


def visible_offices(user: User, offices: OfficeDirectory) -> list[Office]:
    """The offices whose queue ``user`` sees."""
    if user.disabled:
        return []
    if user.role == "admin":
        return list(offices)
    office = offices.get(user.office_id) if user.role == "counselor" else None
    return [office] if office else []


class Desk:
    """Escalations of conversations to counselors, and everything counselors do with them."""

    def __init__(
        self,
        store: EscalationStore,
        conversations: ConversationStore,
        offices: OfficeDirectory,
        bus: EventBus | None = None,
        *,
        users: Callable[[], Iterable[User]] = tuple,
        clock: Callable[[], float] = time.time,
        handling_seconds: float = DEFAULT_HANDLING_SECONDS,
        abandon_seconds: float = DEFAULT_ABANDON_SECONDS,
    ) -> None:
        """Create the desk.

        Args:
            store: the escalation store.
            conversations: the conversation store (pre-handoff transcripts).
            offices: the office directory.
            bus: where events go (None → nowhere; library tests).
            users: the accounts (``KnowledgeBase.list_users``) to count on-duty counselors.
            clock: time source.
            handling_seconds: assumed time per case until the office has closed cases.
            abandon_seconds: an open non-crisis case idle this long is abandoned.
        """
        self.store = store
        self.conversations = conversations
        self.offices = offices
        self.bus = bus
        self._users = users
        self.clock = clock
        self.handling_seconds = handling_seconds
        self.abandon_seconds = abandon_seconds

    @classmethod
    def open(
        cls,
        db: sqlite_utils.Database,
        *,
        offices: OfficeDirectory | None = None,
        bus: EventBus | None = None,
        mask: Callable[[str], str] | None = None,
        **options: Any,
    ) -> Desk:
        """Migrate the conversation and escalation tables and return a desk on them.

        Args:
            db: the project database (``knowledge.db.connect``).
            offices: the office directory; defaults to ``handoff/data/offices.yaml``.
            bus: the event bus (None → events go nowhere).
            mask: text → masked text; defaults to ``intents.pii.mask``.
            **options: further keyword arguments of :class:`Desk`.

        Returns:
            The desk.
        """
        conversations = ConversationStore.open(db, mask)
        store = EscalationStore.open(db, mask)
        return cls(store, conversations, offices or load_directory(), bus, **options)

    # -- events ------------------------------------------------------------------------

    def _publish(self, topic: str, event: dict[str, Any]) -> None:
        if self.bus is not None:
            self.bus.publish(topic, event)

    def _queue_event(self, esc: Escalation, change: str, office_id: str | None = None) -> None:
        event = {
            "type": "queue",
            "office": office_id or esc.office_id,
            "case": esc.id,
            "change": change,
            "state": esc.state,
            "crisis": esc.summary.crisis,
        }
        self._publish(f"office:{event['office']}", event)
        self._publish(ALL_OFFICES, event)

    def _case_event(self, esc: Escalation, event: dict[str, Any]) -> None:
        self._publish(f"case:{esc.id}", {"case": esc.id, **event})

    def _to_person(self, esc: Escalation, event: dict[str, Any]) -> None:
        if not esc.user_key:
            return
        payload = {
            "type": "to_person",
            "user_key": esc.user_key,
            "channel": esc.channel,
            "case": esc.id,
            **event,
        }
        self._publish(f"person:{esc.user_key}", payload)
        self._publish(f"deliver:{esc.channel}", payload)

    # -- offices and waiting ---------------------------------------------------------

    def counselors(self, office_id: str) -> list[User]:
        """Enabled counselor accounts of an office."""
        return [
            u
            for u in self._users()
            if u.role == "counselor" and u.office_id == office_id and not u.disabled
        ]

    def office_of(self, esc: Escalation) -> Office:
        """The office of a case (the default office if it was removed from the data)."""
        return self.offices.get(esc.office_id) or self.offices.default

    def queue_info(self, esc: Escalation, now: float | None = None) -> QueueInfo:
        """The person's place in the queue and the expected wait.

        The wait is the cases ahead (and this one) shared among the office's counselors,
        times the mean handling time of its recent closed cases; out of hours the time
        until the next opening is added.
        """
        now = self.clock() if now is None else now
        queue = self.store.queue(esc.office_id)
        ids = [e.id for e in queue]
        position = ids.index(esc.id) + 1 if esc.id in ids else 0
        office = self.office_of(esc)
        moment = datetime.fromtimestamp(now, JST)
        open_now = self.offices.is_open(office, moment)
        handling = self.store.mean_handling_seconds(office.id) or self.handling_seconds
        staff = max(1, len(self.counselors(office.id)))
        wait = math.ceil(position / staff) * handling if position else 0.0
        next_opening = None
        if not open_now:
            opening = self.offices.next_opening(office, moment)
            next_opening = opening.timestamp() if opening else None
            if next_opening is not None:
                wait += max(0.0, next_opening - now)
        return QueueInfo(position, float(wait), open_now, next_opening)

    # -- the person's side ---------------------------------------------------------------

    def open_case(self, user_key: str) -> Escalation | None:
        """The person's open case, if any (the engine stays silent while there is one)."""
        return self.store.open_for(user_key)

    def escalate(
        self,
        *,
        user_key: str,
        channel: str,
        consent: str,
        reason: str,
        summary: CaseSummary,
        area: Area | None = None,
        conversation_id: int | None = None,
        now: float | None = None,
    ) -> tuple[Escalation, QueueInfo]:
        """Hand a conversation to the office that covers it (after the person agreed).

        Args:
            user_key: the person's pseudonymous key.
            channel: line | web | terminal.
            consent: ``full`` (transcript shared) or ``anonymous`` (categories only).
            reason: requested | crisis | unroutable.
            summary: the triage categories (no text).
            area: the person's area, for routing to an office.
            conversation_id: the stored conversation (with record consent), if any.
            now: timestamp.

        Returns:
            The new case (or the person's open one) and the queue information.

        Raises:
            ValueError: unknown consent or reason.
        """
        if reason not in REASONS:
            raise ValueError(f"unknown reason {reason!r}")
        now = self.clock() if now is None else now
        existing = self.store.open_for(user_key)
        if existing is not None:
            return existing, self.queue_info(existing, now)
        office = self.offices.route(area, summary.topics)
        moment = datetime.fromtimestamp(now, JST)
        due = now
        if not self.offices.is_open(office, moment):
            opening = self.offices.next_opening(office, moment)
            due = opening.timestamp() if opening else now
        try:
            esc = self.store.create(
                user_key=user_key,
                channel=channel,
                conversation_id=conversation_id,
                office_id=office.id,
                consent=consent,
                reason=reason,
                summary=summary,
                due_at=due,
                now=now,
            )
        except Conflict:  # a second tab asked at the same moment
            esc = self.store.open_for(user_key)
            if esc is None:
                raise
            return esc, self.queue_info(esc, now)
        info = self.queue_info(esc, now)
        self.store.set_told_position(esc.id, info.position)
        self._queue_event(esc, "created")
        self.notify_wait_growth(esc.office_id, now)  # a crisis case may go ahead of others
        return esc, info

    def person_message(
        self, user_key: str, text: str, crisis: str = "none", now: float | None = None
    ) -> tuple[Escalation, CaseMessage] | None:
        """Keep and relay what the person wrote while their case is open.

        Args:
            user_key: the person.
            text: what they wrote (masked before it is kept or relayed).
            crisis: the crisis level of this message (raises the case's level).
            now: timestamp.

        Returns:
            The case and the stored message, or None when no case is open.
        """
        now = self.clock() if now is None else now
        esc = self.store.open_for(user_key)
        if esc is None:
            return None
        msg = self.store.add_message(esc.id, "person", text, now=now)
        if crisis != "none" and self.store.raise_crisis(esc.id, crisis):
            esc = self.store.get(esc.id)
            self._queue_event(esc, "crisis")
            if esc.state == WAITING:
                self.store.set_told_position(esc.id, self.queue_info(esc, now).position)
                self.notify_wait_growth(esc.office_id, now)
        self._case_event(esc, {"type": "message", "message": _message_dict(msg)})
        return esc, msg

    def person_leaves(self, user_key: str, why: str = "restart") -> Escalation | None:
        """The person went back to the bot (最初から): their open case is returned.

        Returns:
            The returned case, or None when none was open.
        """
        esc = self.store.open_for(user_key)
        if esc is None:
            return None
        esc = self.store.move(
            esc.id, RETURNED, "person", close_reason=why, action="person_left", now=self.clock()
        )
        self._after_final(esc, notify_person=False)
        return esc

    def forget(self, user_key: str) -> None:
        """The person deleted their conversation: unlink and empty their cases now."""
        esc = self.store.open_for(user_key)
        self.store.forget_person(user_key, now=self.clock())
        if esc is not None:
            esc = self.store.get(esc.id)
            self._after_final(esc, notify_person=False)

    def wait_updates(
        self, office_id: str, now: float | None = None
    ) -> list[tuple[Escalation, QueueInfo]]:
        """Waiting cases whose place in the queue grew since the person was last told.

        Every waiting case's told position is brought up to date.

        Returns:
            ``(case, queue info)`` for each person who should hear that the wait grew.
        """
        grew: list[tuple[Escalation, QueueInfo]] = []
        for esc in self.store.queue(office_id):
            info = self.queue_info(esc, now)
            if esc.told_position is not None and info.position > esc.told_position:
                grew.append((esc, info))
            if esc.told_position != info.position:
                self.store.set_told_position(esc.id, info.position)
        return grew

    def notify_wait_growth(self, office_id: str, now: float | None = None) -> int:
        """Tell every waiting person of ``office_id`` whose place grew (a bus event each).

        Returns:
            How many people were told.
        """
        grew = self.wait_updates(office_id, now)
        for esc, info in grew:
            self._to_person(esc, {"kind": "notice", "notice": "wait_grew", **_info_dict(info)})
        return len(grew)

    # -- the counselor's side ----------------------------------------------------------

    def _check(self, user: User, esc: Escalation) -> None:
        if not can_access(user, esc):
            self.store.audit(
                user.name, "denied", esc.id, esc.conversation_id, user.role, now=self.clock()
            )
            logger.warning("case %d refused to user id %d (other office)", esc.id, user.id)
            raise Forbidden("this case belongs to another office")

    def get_for(self, user: User, escalation_id: int) -> Escalation:
        """The case, if ``user`` may see it (no audit: the queue shows categories only).

        Raises:
            NotFound: no such case.
            Forbidden: another office's case.
        """
        esc = self.store.get(escalation_id)
        self._check(user, esc)
        return esc

    def queue_for(self, user: User) -> list[Escalation]:
        """Open cases of the offices ``user`` sees: waiting first (crisis, oldest), then others."""
        out: list[Escalation] = []
        for office in visible_offices(user, self.offices):
            out += self.store.list_open(office.id)
        if len(visible_offices(user, self.offices)) > 1:
            out.sort(key=lambda e: (e.state != WAITING, -e.crisis_rank, e.created_at, e.id))
        return out

    def open_for_counselor(self, user: User, escalation_id: int) -> CaseView:
        """Open a case: what the counselor may see, with an audit entry for the opening.

        With ``full`` consent the masked transcript before the handover is included;
        with ``anonymous`` consent only the categories (and the live chat, which the
        counselor takes part in) are.

        Raises:
            NotFound: no such case.
            Forbidden: another office's case (the refusal is audited too).
        """
        esc = self.store.get(escalation_id)
        self._check(user, esc)
        shared = esc.consent == CONSENT_FULL and esc.user_key is not None
        lines: list[TranscriptLine] = []
        if shared and esc.user_key:
            for m in self.conversations.messages(esc.user_key):
                if m.created_at <= esc.created_at:
                    sender = "person" if m.direction == "in" else "bot"
                    lines.append(TranscriptLine(sender, m.text, m.created_at))
        action = "open_transcript" if shared else "open_summary"
        self.store.audit(
            user.name, action, esc.id, esc.conversation_id, esc.consent, now=self.clock()
        )
        logger.info("case %d opened (%s)", esc.id, action)
        return CaseView(
            escalation=esc,
            transcript_shared=shared,
            transcript=tuple(lines),
            live=tuple(self.store.messages(esc.id)),
            notes=tuple(self.store.notes(esc.id)),
            history=tuple(self.store.history(esc.id)),
        )

    def claim(self, user: User, escalation_id: int) -> Escalation:
        """Take a waiting case (one counselor wins a race; the other gets Conflict).

        Raises:
            NotFound, Forbidden, Conflict: see :meth:`get_for`; Conflict when not waiting.
        """
        esc = self.get_for(user, escalation_id)
        esc = self.store.move(
            esc.id, CLAIMED, user.name, expect=(WAITING,), counselor=user.name, now=self.clock()
        )
        self._queue_event(esc, "claimed")
        self._case_event(esc, {"type": "state", "state": esc.state, "counselor": user.name})
        self._to_person(esc, {"kind": "notice", "notice": "claimed"})
        self.notify_wait_growth(esc.office_id)
        return esc

    def _own(self, user: User, escalation_id: int) -> Escalation:
        esc = self.get_for(user, escalation_id)
        if esc.state not in (CLAIMED, ACTIVE):
            raise Conflict(f"case {esc.id} is {esc.state}")
        if esc.counselor != user.name and user.role != "admin":
            raise Conflict(f"case {esc.id} is handled by another counselor")
        return esc

    def reply(self, user: User, escalation_id: int, text: str) -> CaseMessage:
        """Send a counselor's message to the person (claimed → active on the first one).

        Raises:
            ValueError: empty text.
            NotFound, Forbidden, Conflict: not this user's open case.
        """
        if not text.strip():
            raise ValueError("empty message")
        esc = self._own(user, escalation_id)
        if esc.state == CLAIMED:
            esc = self.store.move(esc.id, ACTIVE, user.name, expect=(CLAIMED,), now=self.clock())
            self._queue_event(esc, "active")
        msg = self.store.add_message(esc.id, "counselor", text, author=user.name, now=self.clock())
        self._case_event(esc, {"type": "message", "message": _message_dict(msg)})
        # The person gets what the counselor wrote (an agency's phone number must survive);
        # what is kept and shown in the console is the masked copy.
        self._to_person(esc, {"kind": "text", "text": text.strip()})
        return msg

    def send_resource(
        self, user: User, escalation_id: int, resource_id: str, name: str
    ) -> CaseMessage:
        """Send a resource card (the bot side renders it from the knowledge base).

        Raises:
            NotFound, Forbidden, Conflict: not this user's open case.
        """
        esc = self._own(user, escalation_id)
        if esc.state == CLAIMED:
            esc = self.store.move(esc.id, ACTIVE, user.name, expect=(CLAIMED,), now=self.clock())
            self._queue_event(esc, "active")
        msg = self.store.add_message(
            esc.id,
            "counselor",
            name,
            author=user.name,
            kind="resource",
            resource_id=resource_id,
            now=self.clock(),
        )
        self._case_event(esc, {"type": "message", "message": _message_dict(msg)})
        self._to_person(esc, {"kind": "resource", "resource_id": resource_id})
        return msg

    def add_note(self, user: User, escalation_id: int, text: str) -> Note:
        """Add an internal note (never sent to the person).

        Raises:
            ValueError: empty text.
            NotFound, Forbidden: see :meth:`get_for`.
        """
        if not text.strip():
            raise ValueError("empty note")
        esc = self.get_for(user, escalation_id)
        note = self.store.add_note(esc.id, user.name, text, now=self.clock())
        self._case_event(esc, {"type": "note", "note": _note_dict(note)})
        return note

    def transfer(self, user: User, escalation_id: int, office_id: str) -> Escalation:
        """Move a case to another office's queue (it waits there, keeping its age).

        Raises:
            ValueError: unknown office, or the case's own office.
            NotFound, Forbidden, Conflict: see :meth:`get_for`; Conflict when final.
        """
        target = self.offices.get(office_id)
        esc = self.get_for(user, escalation_id)
        if target is None or target.id == esc.office_id:
            raise ValueError("choose another, existing office")
        if esc.state not in OPEN_STATES:
            raise Conflict(f"case {esc.id} is {esc.state}")
        old_office = esc.office_id
        if esc.state == WAITING:
            # Waiting → waiting is not a state change; only the office moves.
            esc = self.store.rehome(esc.id, target.id, user.name, now=self.clock())
        else:
            esc = self.store.move(
                esc.id,
                WAITING,
                user.name,
                office_id=target.id,
                action="transferred",
                detail=f"{esc.office_id}→{target.id}",
                now=self.clock(),
            )
        self._queue_event(esc, "transferred_out", office_id=old_office)
        self._queue_event(esc, "transferred_in")
        self._case_event(esc, {"type": "state", "state": esc.state, "office": target.id})
        self._to_person(esc, {"kind": "notice", "notice": "transferred", "office": target.label})
        info = self.queue_info(esc)
        self.store.set_told_position(esc.id, info.position)
        self.notify_wait_growth(esc.office_id)
        return esc

    def return_to_bot(self, user: User, escalation_id: int) -> Escalation:
        """Hand the person back to the bot without an outcome.

        Raises:
            NotFound, Forbidden, Conflict: see :meth:`get_for`.
        """
        esc = self.get_for(user, escalation_id)
        esc = self.store.move(
            esc.id, RETURNED, user.name, close_reason="returned_by_counselor", now=self.clock()
        )
        self._after_final(esc)
        return esc

    def close(self, user: User, escalation_id: int, outcome: Outcome) -> Escalation:
        """Finish a case with an outcome (kinds referred to, 紹介先) for the statistics.

        Raises:
            ValueError: unknown resource kinds (see ``allowed_kinds``).
            NotFound, Forbidden, Conflict: see :meth:`get_for`.
        """
        esc = self.get_for(user, escalation_id)
        esc = self.store.move(
            esc.id, CLOSED, user.name, outcome=outcome, close_reason="closed", now=self.clock()
        )
        self._after_final(esc)
        return esc

    def _after_final(self, esc: Escalation, notify_person: bool = True) -> None:
        self._queue_event(esc, esc.state)
        self._case_event(esc, {"type": "state", "state": esc.state})
        if notify_person:
            self._to_person(esc, {"kind": "notice", "notice": esc.state})
        self.notify_wait_growth(esc.office_id)

    def expire(self, now: float | None = None) -> list[Escalation]:
        """Abandon open cases idle longer than the timeout — never a crisis case.

        A case left out of hours counts from the next opening, so a message left for the
        next opening waits for it.

        Returns:
            The abandoned cases.
        """
        now = self.clock() if now is None else now
        out: list[Escalation] = []
        for esc in self.store.open_cases_idle():
            if esc.summary.crisis != "none":
                continue  # a flagged conversation is never ended automatically
            if now - max(esc.last_activity, esc.due_at) <= self.abandon_seconds:
                continue
            try:
                esc = self.store.move(
                    esc.id,
                    ABANDONED_STATE,
                    "system",
                    close_reason="timeout",
                    action="timeout",
                    now=now,
                )
            except Conflict:
                continue
            self._after_final(esc)
            out.append(esc)
        return out

    def audit_log(self, escalation_id: int | None = None, actor: str | None = None) -> list[Any]:
        """Audit entries, newest first (see :meth:`EscalationStore.audit_log`)."""
        return list(self.store.audit_log(escalation_id=escalation_id, actor=actor))


def _message_dict(msg: CaseMessage) -> dict[str, Any]:
    return {
        "id": msg.id,
        "sender": msg.sender,
        "author": msg.author,
        "kind": msg.kind,
        "text": msg.text,
        "resource_id": msg.resource_id,
        "at": msg.created_at,
    }


def _note_dict(note: Note) -> dict[str, Any]:
    return {"id": note.id, "author": note.author, "text": note.text, "at": note.created_at}


def _info_dict(info: QueueInfo) -> dict[str, Any]:
    return {
        "position": info.position,
        "wait_seconds": info.expected_wait_seconds,
        "open_now": info.open_now,
        "next_opening": info.next_opening,
    }


def message_dict(msg: CaseMessage) -> dict[str, Any]:
    """A live message as a JSON-able dict (console and bus)."""
    return _message_dict(msg)


def info_dict(info: QueueInfo) -> dict[str, Any]:
    """Queue information as a JSON-able dict."""
    return _info_dict(info)


def outcome_kinds(kinds: Sequence[str], allowed: Iterable[str]) -> tuple[str, ...]:
    """Keep the known resource kinds of an outcome, in order, once each.

    Raises:
        ValueError: a kind is not in ``allowed``.
    """
    known = set(allowed)
    bad = [k for k in kinds if k not in known]
    if bad:
        raise ValueError(f"unknown resource kinds: {bad}")
    return tuple(dict.fromkeys(kinds))
