"""/admin/stats: roles, filters, charts and CSV with 「5未満」; counting as they end."""

from __future__ import annotations

import asyncio
import csv
import io
import re
from datetime import date

from bot import keys
from bot.web.charts import bar_chart, line_chart
from bot.web.stats import parse_filter
from handoff.stats import COMPLEMENT, SUPPRESSED, Cell, Row, Table
from tests.bot.web.conftest import Staff
from tests.handoff.test_stats import seed

RANGE = "start=2025-11-03&end=2025-11-16"


def _seed(staff: Staff) -> None:
    seed(staff.app[keys.STATS])


def _cell(html: str, table: str, key: str) -> str:
    block = html.split(f'data-table="{table}"', 1)[1].split("</table>", 1)[0]
    m = re.search(rf'data-key="{re.escape(key)}">.*?<td class="num[^"]*">([^<]*)</td>', block)
    assert m, (table, key)
    return m.group(1)


def _svg(html: str, table: str) -> str:
    return html.split(f'id="chart-{table}"', 1)[1].split("</svg>", 1)[0]


# -- roles ----------------------------------------------------------------------------------


async def test_anonymous_is_sent_to_login(staff: Staff) -> None:
    resp = await staff.client.get("/admin/stats", allow_redirects=False)
    assert resp.status == 303
    assert resp.headers["Location"].startswith("/admin/login")


async def test_counselor_is_refused(staff: Staff) -> None:
    await staff.login("carol")
    assert (await staff.client.get("/admin/stats")).status == 403
    assert (await staff.client.get(f"/admin/stats/topic.csv?{RANGE}")).status == 403


async def test_staff_and_admin_see_the_page_with_security_headers(staff: Staff) -> None:
    _seed(staff)
    await staff.login("sam")
    resp = await staff.client.get(f"/admin/stats?{RANGE}")
    assert resp.status == 200
    assert "script-src 'self'" in resp.headers["Content-Security-Policy"]
    html = await resp.text()
    assert ' style="' not in html  # charts use SVG attributes: the strict CSP holds
    staff.logout_local()
    await staff.login("alice")
    assert (await staff.client.get("/admin/stats")).status == 200


# -- numbers on the page ----------------------------------------------------------------------


async def test_page_shows_the_seeded_numbers_and_hides_small_ones(staff: Staff) -> None:
    _seed(staff)
    await staff.login("sam")
    html = await (await staff.client.get(f"/admin/stats?{RANGE}")).text()
    assert _cell(html, "overview", "total") == "28"
    assert _cell(html, "overview", "handoff_rate") == "35.7%"
    assert _cell(html, "overview", "pickup_median") == "1分30秒"
    assert _cell(html, "overview", "local_share") == "53.6%"
    assert _cell(html, "topic", "theft") == "12"
    assert _cell(html, "topic", "juvenile") == SUPPRESSED
    assert _cell(html, "topic", "gambling") == COMPLEMENT
    assert _cell(html, "per_day", "2025-11-10") == SUPPRESSED
    assert _cell(html, "referrals_counselor", "municipal_welfare") == SUPPRESSED
    # Charts: the hidden counts appear as 「5未満」 in the SVG, their numbers nowhere.
    topic_svg = _svg(html, "topic")
    assert f">{SUPPRESSED}</text>" in topic_svg
    assert f">{COMPLEMENT}</text>" in topic_svg
    assert ">12</text>" in topic_svg
    assert f">{SUPPRESSED}</text>" in _svg(html, "per_day")


async def test_office_filter(staff: Staff) -> None:
    _seed(staff)
    await staff.login("sam")
    html = await (await staff.client.get(f"/admin/stats?{RANGE}&office=office_b")).text()
    assert _cell(html, "overview", "total") == "5"
    assert _cell(html, "overview", "pickup_median") == "非表示"
    html = await (await staff.client.get(f"/admin/stats?{RANGE}&office=office_a")).text()
    assert _cell(html, "overview", "total") == "23"
    assert 'value="office_a" selected' in html


async def test_bad_filters_are_explained(staff: Staff) -> None:
    await staff.login("sam")
    resp = await staff.client.get("/admin/stats?start=2025-13-01")
    assert resp.status == 400
    assert "2025-11-03 の形" in await resp.text()
    resp = await staff.client.get("/admin/stats?start=2025-11-10&end=2025-11-01")
    assert resp.status == 400
    assert "終了日は開始日より後" in await resp.text()
    resp = await staff.client.get("/admin/stats?office=%3Cscript%3E")
    assert resp.status == 400
    assert "<script>" not in await resp.text()
    assert (await staff.client.get("/admin/stats/topic.csv?office=nope")).status == 400


def test_parse_filter_defaults_to_the_last_30_days() -> None:
    assert parse_filter({}, [], date(2025, 11, 30)) == (
        date(2025, 11, 1),
        date(2025, 11, 30),
        None,
    )


# -- CSV --------------------------------------------------------------------------------------


async def test_csv_is_utf8_with_bom_and_suppressed(staff: Staff) -> None:
    _seed(staff)
    await staff.login("sam")
    resp = await staff.client.get(f"/admin/stats/topic.csv?{RANGE}")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in resp.headers["Content-Disposition"]
    body = await resp.read()
    assert body.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert rows[0] == ["相談内容（主な話題）", "2025-11-03〜2025-11-16", "すべての事務所"]
    assert rows[1] == ["区分", "件数"]
    values = dict(r for r in rows[2:] if len(r) == 2)
    assert values["万引き・窃盗"] == "12"
    assert values["子ども・少年の非行"] == SUPPRESSED
    assert values["ギャンブル・ゲームへの依存、それによる借金や使い込み"] == COMPLEMENT
    assert values["合計"] == "28"
    assert b"\r\n" in body
    overview = await (await staff.client.get(f"/admin/stats/overview.csv?{RANGE}")).read()
    assert "相談件数,28".encode() in overview
    assert "応答前に終了した引き継ぎ,5未満".encode() in overview
    assert (await staff.client.get(f"/admin/stats/nothing.csv?{RANGE}")).status == 404


async def test_every_table_exports(staff: Staff) -> None:
    _seed(staff)
    await staff.login("sam")
    html = await (await staff.client.get(f"/admin/stats?{RANGE}")).text()
    links = re.findall(r'href="(/admin/stats/[a-z_]+\.csv\?[^"]+)"', html)
    assert len(links) == 12
    for link in links:
        resp = await staff.client.get(link.replace("&amp;", "&"))
        assert resp.status == 200, link
        assert (await resp.read()).startswith(b"\xef\xbb\xbf")


# -- charts -----------------------------------------------------------------------------------


def _table(values: list[Cell], chart: str = "bar") -> Table:
    rows = tuple(Row(f"k{i}", f"ラベル{i}", c) for i, c in enumerate(values))
    return Table("t", "テスト", rows, None, chart)


def test_bar_chart_draws_values_and_5未満() -> None:
    svg = bar_chart(_table([Cell(12, "12"), Cell.hidden(), Cell.hidden(COMPLEMENT), Cell(0, "0")]))
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert ">ラベル0</text>" in svg and ">12</text>" in svg
    assert svg.count(f">{SUPPRESSED}</text>") == 1
    assert 'stroke-dasharray="4 3"' in svg  # the 5未満 outline
    assert f">{COMPLEMENT}</text>" in svg
    assert 'style="' not in svg


def test_line_chart_band_only_when_something_is_hidden() -> None:
    visible = line_chart(_table([Cell(6, "6"), Cell(0, "0"), Cell(9, "9")], "line"))
    assert SUPPRESSED not in visible
    assert visible.count('class="point"') == 3
    hidden = line_chart(_table([Cell(6, "6"), Cell.hidden(), Cell(9, "9")], "line"))
    assert f">{SUPPRESSED}</text>" in hidden
    assert 'class="point small"' in hidden
    assert f"ラベル1: {SUPPRESSED}" in hidden


def test_chart_labels_are_escaped() -> None:
    svg = bar_chart(Table("x", "<b>", (Row("a", "<i>&", Cell(5, "5")),)))
    assert "<i>" not in svg and "&lt;i&gt;&amp;" in svg and "&lt;b&gt;" in svg


# -- counting real conversations ----------------------------------------------------------------


async def test_conversations_are_counted_when_they_end(staff: Staff) -> None:
    client = staff.client
    tracker = staff.app[keys.STATS_TRACKER]
    stats = staff.app[keys.STATS]
    first = await client.post("/api/chat", json={"text": "母が万引きをやめられません"})
    session = (await first.json())["session"]
    await client.post("/api/chat", json={"session": session, "postback": "consent:granted"})
    assert len(tracker) == 1
    assert stats.store.count_rows() == 0  # still open: nothing written yet
    await client.post("/api/chat", json={"session": session, "text": "履歴を消して"})
    assert stats.store.count_rows() == 1
    row = stats.store.db.execute(
        "SELECT channel, topic, audience, handoff FROM stats_conversations"
    ).fetchone()
    assert row == ("web", "theft", "family", 0)
    # Someone else leaves; the idle sweep counts them once.
    other = await client.post("/api/chat", json={"text": "薬物がやめられない"})
    assert (await other.json())["session"]
    engine = staff.app[keys.ENGINE]
    assert tracker.sweep(engine.clock() + 31 * 60) == 1
    assert tracker.sweep(engine.clock() + 62 * 60) == 0
    assert stats.store.count_rows() == 2
    # Nothing of the person is in the statistics tables.
    dump = "\n".join(stats.store.db.conn.iterdump())
    stats_lines = [line for line in dump.splitlines() if "stats_" in line]
    assert not any("万引き" in line or session in line for line in stats_lines)


async def test_a_handoff_is_counted_from_the_desk_events(staff: Staff) -> None:
    from handoff.models import CaseSummary, Outcome

    app = staff.app
    desk, tracker, stats = app[keys.DESK], app[keys.STATS_TRACKER], app[keys.STATS]
    kb = app[keys.KB]
    kb.add_user("pat", "counselor", "pat-counsel-pass-9", office_id="sample_probation")
    counselor = kb.get_user("pat")
    assert counselor is not None
    first = await staff.client.post("/api/chat", json={"text": "息子が薬物をやめられません"})
    session = (await first.json())["session"]
    assert len(tracker) == 1
    user_key = next(iter(tracker._open))
    clock = app[keys.ENGINE].clock
    case, _ = desk.escalate(
        user_key=user_key,
        channel="web",
        consent="anonymous",
        reason="requested",
        summary=CaseSummary(topics=("drugs",), audience="family", age_group="adult"),
        now=clock() - 600,
    )
    await asyncio.sleep(0.05)
    assert tracker.sweep(clock() + 3600) == 0  # with a counselor: not idle
    desk.claim(counselor, case.id)
    desk.close(counselor, case.id, Outcome(referred_kinds=("mental_health_center",)))
    await asyncio.sleep(0.05)
    # Back with the bot: counted once, when the conversation ends.
    assert stats.store.count_rows() == 0
    await staff.client.post("/api/chat", json={"session": session, "text": "履歴を消して"})
    rows = stats.store.db.execute(
        "SELECT office, topic, handoff, handoff_outcome, pickup_seconds IS NOT NULL "
        "FROM stats_conversations"
    ).fetchall()
    assert rows == [("sample_probation", "drugs", 1, "closed", 1)]
    kinds = stats.store.db.execute(
        "SELECT kind FROM stats_referrals WHERE source = 'counselor'"
    ).fetchall()
    assert kinds == [("mental_health_center",)]
