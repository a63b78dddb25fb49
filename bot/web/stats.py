"""Statistics: count conversations as they end (engine hooks) and ``/admin/stats`` for staff."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import logging
from collections.abc import AsyncIterator, Callable
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from aiohttp import web
from markupsafe import Markup

from bot import keys
from bot.dialogue.replies import ResourcesReply
from bot.web import admin
from bot.web.auth import require_role
from bot.web.charts import chart
from handoff.stats import HANDOFF_OUTCOMES, JST, ConversationTracker, Report, Statistics, Table

if TYPE_CHECKING:
    from bot.channels.base import IncomingMessage
    from bot.dialogue.turn import Turn

logger = logging.getLogger(__name__)

SWEEP_SECONDS = 60
DEFAULT_DAYS = 30
STAFF = ("admin", "staff")


# -- counting conversations -----------------------------------------------------------------


def turn_observer(tracker: ConversationTracker) -> Callable[[Turn, IncomingMessage | None], None]:
    """An ``Engine.turn_hooks`` entry feeding one turn's categories to the tracker."""

    def observe(turn: Turn, incoming: IncomingMessage | None) -> None:
        if turn.delete_requested:
            return  # the forget hook counts what was there; the deletion turn adds nothing
        try:
            state = turn.state
            slots = state.slots
            topics = slots.topics or (state.pending.topics if state.pending else ())
            kinds = [
                card.kind
                for reply in turn.replies
                if isinstance(reply, ResourcesReply)
                for card in reply.items
            ]
            tracker.observe(
                turn.user_key,
                channel=turn.channel,
                now=turn.now,
                spoke=incoming is not None,
                topics=topics,
                audience=slots.audience,
                age_group=slots.age_group,
                crisis=state.crisis,
                area=slots.area,
                referred_kinds=kinds,
            )
        except Exception:
            logger.exception("statistics could not follow a turn")

    return observe


def _office_for() -> Callable[[Any, Any], str] | None:
    try:
        from handoff.offices import load_directory

        directory = load_directory()
    except Exception:
        logger.exception("offices could not be loaded; statistics count without an office")
        return None
    return lambda area, topics: directory.route(area, topics).id


async def _stats_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[keys.CONFIG]
    stats = Statistics.open(app[keys.DB])
    tracker = ConversationTracker(
        stats, idle_seconds=config.idle_minutes * 60, office_for=_office_for()
    )
    app[keys.STATS] = stats
    app[keys.STATS_TRACKER] = tracker
    engine = app[keys.ENGINE]
    engine.turn_hooks.append(turn_observer(tracker))
    engine.forget_hooks.append(lambda user_key: tracker.end(user_key, engine.clock()))
    tasks = [asyncio.create_task(_sweep_periodically(tracker, engine.clock))]
    if keys.DESK in app and keys.BUS in app:
        from handoff.desk import ALL_OFFICES

        cases = app[keys.BUS].subscribe(ALL_OFFICES)
        tasks.append(asyncio.create_task(_follow_cases(app[keys.DESK], cases, tracker)))
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        counted = tracker.flush()
        logger.info("statistics: %d open conversations counted at shutdown", counted)


async def _follow_cases(desk: Any, cases: Any, tracker: ConversationTracker) -> None:
    """Follow the desk's queue events: a new case holds its conversation open, a final one
    counts it (read from the persisted case, so a restart in between loses nothing)."""
    try:
        async for event in cases:
            change, case_id = event.get("change"), event.get("case")
            if case_id is None or (change != "created" and change not in HANDOFF_OUTCOMES):
                continue
            try:
                case = desk.store.get(case_id)
                if change == "created":
                    tracker.case_started(case)
                else:
                    tracker.case_ended(case)
            except Exception:
                logger.exception("statistics could not follow case %s", case_id)
    finally:
        cases.close()


async def _sweep_periodically(tracker: ConversationTracker, clock: Callable[[], float]) -> None:
    """Count conversations idle past the timeout, once a minute."""
    while True:
        await asyncio.sleep(SWEEP_SECONDS)
        try:
            tracker.sweep(clock())
        except Exception:
            logger.exception("statistics sweep failed; retrying")


# -- the page -------------------------------------------------------------------------------


class FilterError(ValueError):
    """A filter value is invalid (message in Japanese, for the page)."""


def _today() -> date:
    return datetime.now(JST).date()


def _offices(request: web.Request) -> list[tuple[str, str]]:
    """(id, label) of the offices a staff member may filter by."""
    found: dict[str, str] = {}
    with contextlib.suppress(Exception):
        from handoff.offices import load_directory

        for office in load_directory():
            found[office.id] = office.label
    for office_id in request.config_dict[keys.STATS].offices():
        found.setdefault(office_id, office_id)
    return list(found.items())


def parse_filter(
    query: Any, offices: list[tuple[str, str]], today: date
) -> tuple[date, date, str | None]:
    """Read ``start``, ``end`` and ``office`` from the query (defaults: the last 30 days).

    Raises:
        FilterError: a date is not YYYY-MM-DD, the range is reversed, or the office unknown.
    """
    try:
        end = date.fromisoformat(query.get("end") or today.isoformat())
        start = date.fromisoformat(
            query.get("start") or (end - timedelta(days=DEFAULT_DAYS - 1)).isoformat()
        )
    except ValueError as exc:
        raise FilterError("日付は 2025-11-03 の形で入力してください。") from exc
    if end < start:
        raise FilterError("終了日は開始日より後にしてください。")
    office = query.get("office") or None
    if office is not None and office not in {o for o, _ in offices}:
        raise FilterError("その事務所はありません。")
    return start, end, office


def _report(request: web.Request) -> tuple[Report, list[tuple[str, str]], str]:
    offices = _offices(request)
    error = ""
    try:
        start, end, office = parse_filter(request.query, offices, _today())
    except FilterError as exc:
        error = str(exc)
        end = _today()
        start, office = end - timedelta(days=DEFAULT_DAYS - 1), None
    report = request.config_dict[keys.STATS].report(start, end, office)
    return report, offices, error


@require_role(*STAFF)
async def stats_page(request: web.Request) -> web.Response:
    """``GET /admin/stats``: charts and tables for a day range and office."""
    report, offices, error = _report(request)
    query = f"start={report.start.isoformat()}&end={report.end.isoformat()}"
    if report.office:
        query += f"&office={report.office}"
    sections = [
        {"table": t, "chart": Markup(chart(t)), "csv": f"{PREFIX}/{t.id}.csv?{query}"}
        for t in report.tables
    ]
    return admin.render(
        request,
        "stats.html",
        {
            "report": report,
            "sections": sections,
            "offices": offices,
            "error": error,
            "summary": [error] if error else [],
        },
        status=400 if error else 200,
    )


def table_csv(table: Table, report: Report) -> bytes:
    """One table as CSV: UTF-8 with BOM (Excel in Japan), CRLF, hidden counts as text."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    period = f"{report.start.isoformat()}〜{report.end.isoformat()}"
    writer.writerow([_safe(table.title), period, _safe(report.office or "すべての事務所")])
    writer.writerow(list(table.header))
    for row in table.rows:
        writer.writerow([_safe(row.label), _safe(row.cell.text)])
    if table.total is not None:
        writer.writerow(["合計", _safe(table.total.text)])
    return "\ufeff".encode() + buf.getvalue().encode("utf-8")


def _safe(value: str) -> str:
    """Keep a spreadsheet from reading a cell as a formula."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


@require_role(*STAFF)
async def stats_csv(request: web.Request) -> web.Response:
    """``GET /admin/stats/{table}.csv``: one table of the page as CSV."""
    report, _, error = _report(request)
    if error:
        raise web.HTTPBadRequest(text=error)
    try:
        table = report.table(request.match_info["table"])
    except KeyError:
        raise web.HTTPNotFound(text="その表はありません。") from None
    name = f"tsunagu-{table.id}-{report.start.isoformat()}_{report.end.isoformat()}.csv"
    return web.Response(
        body=table_csv(table, report),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


PREFIX = f"{admin.PREFIX}/stats"


def extend_admin(sub: web.Application) -> None:
    """Add ``/admin/stats`` and its CSV exports to the admin sub-app (its auth, its layout)."""
    sub.router.add_get("/stats", stats_page)
    sub.router.add_get(r"/stats/{table:[a-z_]+}.csv", stats_csv)


def setup(app: web.Application) -> None:
    """Count conversations as they end (after ``bot.core``; pages come via extend_admin)."""
    app.cleanup_ctx.append(_stats_ctx)
