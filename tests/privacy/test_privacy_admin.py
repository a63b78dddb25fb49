"""Consent records and the audit log at /admin/privacy: admins only, CSV export, no user keys."""

from __future__ import annotations

import csv
import io
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from bot import keys
from bot.app import create_app
from bot.config import load_config
from bot.web.privacy_admin import AuditRow, audit_csv
from tests.privacy.helpers import case_for_counselor, chat, login, start_with_consent

PASSWORDS = {
    "root": "root-admin-pass-1",
    "sato": "sato-staff-pass-2",
    "kana": "kana-counsel-pass-3",
}
WORRY = "弟が自転車を盗んでしまいました"


@pytest.fixture
async def client(
    aiohttp_client: Callable[[web.Application], Awaitable[TestClient]],
    tmp_path: Path,
    sudachi: None,
) -> TestClient:
    config = load_config(env={"TSUNAGU_SECRET": "privacy-admin"}, db_path=tmp_path / "t.db")
    app = create_app(config)
    c = await aiohttp_client(app)
    kb = app[keys.KB]
    kb.add_user("root", "admin", PASSWORDS["root"])
    kb.add_user("sato", "staff", PASSWORDS["sato"])
    kb.add_user("kana", "counselor", PASSWORDS["kana"], office_id="sample_probation")
    return c


async def _case_opened(client: TestClient) -> tuple[str, int]:
    session = await start_with_consent(client)
    await chat(client, session, text=WORRY)
    await chat(client, session, text="人と話したい")
    await chat(client, session, postback="handoff:full")
    key, case_id, kana = case_for_counselor(client, session, "kana")
    client.app[keys.DESK].open_for_counselor(kana, case_id)
    return key, case_id


async def test_only_admins_see_consent_and_audit(client: TestClient) -> None:
    for name in ("sato", "kana"):
        await login(client, name, PASSWORDS[name])
        for path in ("/admin/privacy/", "/admin/privacy/audit.csv"):
            resp = await client.get(path, allow_redirects=False)
            assert resp.status == 403, (name, path)
        client.session.cookie_jar.clear()
    resp = await client.get("/admin/privacy/", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"].startswith("/admin/login")
    resp = await client.get("/admin/privacy", allow_redirects=False)
    assert resp.status == 301 and resp.headers["Location"] == "/admin/privacy/"


async def test_consent_records_and_audit_show_no_key_and_no_text(client: TestClient) -> None:
    key, _ = await _case_opened(client)
    declined, _ = await chat(client, None)
    await chat(client, declined, postback="consent:declined")
    await login(client, "root", PASSWORDS["root"])
    resp = await client.get("/admin/privacy/")
    assert resp.status == 200
    assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
    page = await resp.text()
    assert "記録に同意：1件" in page and "記録しない（選択だけを保存）：1件" in page
    assert "会話の共有に同意" in page  # the case's consent
    assert "会話の記録を開いた" in page and "kana" in page  # who opened the transcript
    assert key not in page and key.split(":")[1] not in page
    assert WORRY not in page and "自転車" not in page
    assert 'href="/admin/privacy/"' in page  # in the admin's menu


async def test_audit_export_is_csv_audited_and_formula_safe(client: TestClient) -> None:
    _, case_id = await _case_opened(client)
    # A login name typed as a spreadsheet formula lands in the login audit.
    page = await client.get("/admin/login")
    token = page.cookies["tsunagu_login_csrf"].value
    await client.post(
        "/admin/login",
        data={"name": "=HYPERLINK(1)", "password": "x" * 12, "csrf_token": token},
    )
    await login(client, "root", PASSWORDS["root"])
    resp = await client.get("/admin/privacy/audit.csv")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in resp.headers["Content-Disposition"]
    body = await resp.read()
    assert body.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert rows[0] == ["日時", "種類", "操作者", "操作", "相談番号", "会話番号", "詳細"]
    opened = [r for r in rows if r[3] == "会話の記録を開いた"]
    assert opened and opened[0][2] == "kana" and opened[0][4] == str(case_id)
    assert any(r[2] == "'=HYPERLINK(1)" for r in rows)
    assert not any(cell.startswith("=") for r in rows for cell in r)
    # The export itself is in the log.
    resp = await client.get("/admin/privacy/audit.csv")
    rows = list(csv.reader(io.StringIO((await resp.read()).decode("utf-8-sig"))))
    assert any(r[3] == "監査記録を書き出した" and r[2] == "root" for r in rows)


def test_audit_csv_cells() -> None:
    rows = [AuditRow(0.0, "login", "@evil", "login", None, None, "-1+1")]
    data = audit_csv(rows).decode("utf-8-sig").splitlines()
    assert data[1].split(",")[2:] == ["'@evil", "ログイン", "", "", "'-1+1"]
