"""What /admin and /console share: the base stylesheet, served by both and linked first."""

from __future__ import annotations

from bot.web import staff as staff_web
from tests.bot.web.conftest import Staff


def test_static_file_serves_own_and_shared_files_only() -> None:
    own = staff_web.static_file("admin", {"admin.css": "text/css"}, "admin.css")
    shared = staff_web.static_file("console", {}, "staff.css")
    assert own is not None and own.content_type == "text/css" and own.charset == "utf-8"
    assert shared is not None and b"--accent" in (shared.body or b"")
    assert staff_web.static_file("admin", {"admin.css": "text/css"}, "console.css") is None
    assert staff_web.static_file("admin", {}, "../admin/admin.css") is None


async def test_both_login_pages_link_the_shared_stylesheet_before_their_own(
    staff: Staff,
) -> None:
    for prefix, own in (("/admin", "admin.css"), ("/console", "console.css")):
        page = await (await staff.client.get(f"{prefix}/login")).text()
        shared_at = page.index(f'href="{prefix}/static/staff.css"')
        assert shared_at < page.index(f'href="{prefix}/static/{own}"')
        resp = await staff.client.get(f"{prefix}/static/staff.css")
        assert resp.status == 200 and resp.content_type == "text/css"
        assert ":focus-visible" in await resp.text()
