"""Value types of escalations: the case, its messages, notes, outcome and audit entries."""

from __future__ import annotations

from dataclasses import dataclass, field

CONSENT_FULL = "full"  # 同意する: the counselor sees the masked transcript
CONSENT_ANONYMOUS = "anonymous"  # 匿名のまま: only topic, audience, age, area, crisis level
ESCALATION_CONSENTS = (CONSENT_FULL, CONSENT_ANONYMOUS)
CRISIS_RANK = {"urgent": 2, "concern": 1, "none": 0}
REASONS = ("requested", "crisis", "unroutable")


@dataclass(frozen=True, slots=True)
class CaseSummary:
    """What triage knows about a conversation: categories only, never text."""

    topics: tuple[str, ...] = ()
    audience: str = "unknown"
    age_group: str = "unknown"
    area_name: str | None = None  # 横浜市 / 神奈川県
    area_code: str | None = None  # municipality or prefecture code
    crisis: str = "none"  # none | concern | urgent
    recommended: tuple[str, ...] = ()  # resource ids the bot offered

    @property
    def topic(self) -> str:
        """The main topic (``other`` when none)."""
        return self.topics[0] if self.topics else "other"


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a case ended, for the statistics: kinds referred to and 紹介先 (masked)."""

    referred_kinds: tuple[str, ...] = ()
    referred_to: str = ""
    resolved: bool = True


@dataclass(frozen=True, slots=True)
class Escalation:
    """One handover of a conversation to an office's counselors."""

    id: int
    user_key: str | None  # None once the person deleted their conversation
    channel: str
    conversation_id: int | None
    office_id: str
    state: str
    consent: str  # full | anonymous
    reason: str  # requested | crisis | unroutable
    summary: CaseSummary
    counselor: str | None
    created_at: float
    updated_at: float
    due_at: float  # when a counselor can first answer (the next opening when out of hours)
    last_activity: float
    claimed_at: float | None = None
    closed_at: float | None = None
    outcome: Outcome | None = None
    close_reason: str | None = None
    told_position: int | None = None  # the place in the queue the person was last told

    @property
    def crisis_rank(self) -> int:
        """2 urgent, 1 concern, 0 none (queue order)."""
        return CRISIS_RANK.get(self.summary.crisis, 0)


@dataclass(frozen=True, slots=True)
class CaseMessage:
    """A message of the live chat between the person and a counselor (masked)."""

    id: int
    escalation_id: int
    sender: str  # person | counselor | system
    author: str | None  # the counselor's user name
    kind: str  # text | resource
    text: str
    resource_id: str | None
    created_at: float


@dataclass(frozen=True, slots=True)
class Note:
    """An internal note on a case; never sent to the person."""

    id: int
    escalation_id: int
    author: str
    text: str
    created_at: float


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """Who opened (or was refused) which case, and when."""

    id: int
    at: float
    actor: str
    action: str  # open_transcript | open_summary | denied
    escalation_id: int
    conversation_id: int | None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One state change of a case."""

    at: float
    actor: str
    action: str
    from_state: str | None
    to_state: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class TranscriptLine:
    """One line of the masked transcript shown to a counselor."""

    sender: str  # person | bot | counselor | system
    text: str
    created_at: float
    author: str | None = None
    resource_id: str | None = None


@dataclass(frozen=True, slots=True)
class QueueInfo:
    """The person's place in the queue and the expected wait."""

    position: int  # 1 = next
    expected_wait_seconds: float
    open_now: bool
    next_opening: float | None  # timestamp, when closed


@dataclass(frozen=True, slots=True)
class CaseView:
    """What a counselor sees when opening a case (already scoped by consent)."""

    escalation: Escalation
    transcript_shared: bool
    transcript: tuple[TranscriptLine, ...]  # pre-handoff lines only with consent
    live: tuple[CaseMessage, ...]
    notes: tuple[Note, ...]
    history: tuple[HistoryEntry, ...] = field(default_factory=tuple)
