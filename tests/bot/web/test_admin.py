"""The /admin pages through real forms: CRUD with CSRF, validation, history, trials, import."""

from __future__ import annotations

import html
import io
import re
import zipfile

import aiohttp
import yaml

from bot import keys
from bot.web.bundles import export_zip, read_upload
from tests.bot.web.conftest import Staff, csrf_of

RESOURCE = {
    "id": "test_city.desk",
    "name": "テスト市 くらしの相談窓口",
    "kind": "municipal_welfare",
    "description": "生活の困りごとを相談できる窓口です。",
    "coverage": "municipality",
    "municipality_code": "131041",
    "phone": "03-0000-0000",
    "hours": "月火水木金 09:00-17:00",
    "how": ["電話", "来所"],
    "notes": "相談は無料です。",
    "sample": "1",
    "active": "1",
}


def _count(staff: Staff, table: str) -> int:
    return staff.app[keys.DB].execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


async def test_create_edit_deactivate_resource_through_forms(staff: Staff) -> None:
    await staff.login("sam")
    kb = staff.app[keys.KB]
    resp = await staff.post_form("/admin/resources/new", RESOURCE)
    assert resp.status == 303, await resp.text()
    assert resp.headers["Location"] == "/admin/resources/test_city.desk?msg=created"
    r = kb.get_resource("test_city.desk")
    assert r is not None and r.phone == "03-0000-0000" and r.hours[0].days == (0, 1, 2, 3, 4)
    assert r.how == ("電話", "来所") and r.sample and r.active
    page = await staff.client.get(resp.headers["Location"])
    text = await page.text()
    assert "作成しました。" in text and 'value="03-0000-0000"' in text
    assert "月火水木金 09:00-17:00" in text
    # Edit the phone number; the id in the URL wins over any posted id.
    edited = {**RESOURCE, "phone": "０３ー１１１１ー２２２２", "id": "other"}
    resp = await staff.post_form("/admin/resources/test_city.desk", edited)
    assert resp.status == 303
    assert kb.get_resource("test_city.desk").phone == "03-1111-2222"  # type: ignore[union-attr]
    assert kb.get_resource("other") is None
    assert [rev.actor for rev in kb.history("resource", "test_city.desk")] == ["sam", "sam"]
    # Unchecking a box really clears it (checkboxes send nothing when off).
    unchecked = {k: v for k, v in RESOURCE.items() if k != "sample"}
    resp = await staff.post_form("/admin/resources/test_city.desk", unchecked)
    assert resp.status == 422  # a non-sample resource with a phone needs its source
    assert "出典URL" in await resp.text()
    # Deactivate.
    resp = await staff.post_form("/admin/resources/test_city.desk/deactivate")
    assert resp.status == 303
    assert not kb.get_resource("test_city.desk").active  # type: ignore[union-attr]
    listing = await (await staff.client.get("/admin/resources?active=0")).text()
    assert "テスト市 くらしの相談窓口" in listing


async def test_validation_errors_are_shown_inline_and_nothing_is_lost(staff: Staff) -> None:
    await staff.login("sam")
    bad = {
        **RESOURCE,
        "phone": "12345",
        "url": "javascript:alert(1)",
        "hours": "月火 9時から",
        "kind": "",
    }
    before = _count(staff, "revisions")
    resp = await staff.post_form("/admin/resources/new", bad)
    assert resp.status == 422
    text = await resp.text()
    assert "入力内容を確認してください" in text
    assert "電話番号の形式が正しくありません" in text
    assert "URLは http:// か https:// で始まる形で入力してください。" in text
    assert "受付時間は「曜日・開始・終了」の組で指定してください。" in text
    assert "種類を選んでください。" in text
    # Each message sits next to its field, which is marked invalid.
    assert re.search(r'id="f-phone"[^>]*aria-invalid="true"', text)
    assert 'id="err-phone"' in text
    # What was typed is still there.
    assert 'value="12345"' in text and "テスト市 くらしの相談窓口" in text
    assert "月火 9時から" in text
    assert _count(staff, "revisions") == before
    assert staff.app[keys.KB].get_resource("test_city.desk") is None


async def test_create_refuses_an_existing_id(staff: Staff) -> None:
    await staff.login("sam")
    resp = await staff.post_form("/admin/resources/new", {**RESOURCE, "id": "police_110"})
    assert resp.status == 422
    assert "このIDはすでに使われています。" in await resp.text()


async def test_history_shows_a_diff_and_restore_brings_the_old_value_back(staff: Staff) -> None:
    await staff.login("sam")
    kb = staff.app[keys.KB]
    old = kb.get_resource("yorisoi_hotline")
    assert old is not None and old.phone
    page = await staff.client.get("/admin/resources/yorisoi_hotline")
    assert page.status == 200
    form = {
        **{k: v for k, v in _form_of(await page.text()).items()},
        "phone": "03-9999-0000",
    }
    resp = await staff.post_form("/admin/resources/yorisoi_hotline", form)
    assert resp.status == 303, await resp.text()
    assert kb.get_resource("yorisoi_hotline") == _replace_phone(old, "03-9999-0000")
    text = await (await staff.client.get("/admin/history/resource/yorisoi_hotline")).text()
    assert f"<del>{old.phone}</del>" in text and "<ins>03-9999-0000</ins>" in text
    # Only the phone changed in the newest revision.
    newest = text.split('class="revision"', 2)[1]
    assert newest.count('class="changed"') == 1
    revs = kb.history("resource", "yorisoi_hotline")
    resp = await staff.post_form(f"/admin/revisions/{revs[1].id}/restore")
    assert resp.status == 303
    assert kb.get_resource("yorisoi_hotline") == old
    assert kb.history("resource", "yorisoi_hotline")[0].action == "restore"
    page = await staff.client.get(resp.headers["Location"])
    assert "この版に戻しました" in await page.text()


def _replace_phone(r, phone):  # type: ignore[no-untyped-def]
    from dataclasses import replace

    return replace(r, phone=phone)


def _form_of(page: str) -> dict[str, object]:
    """The values of the resource edit form as a browser would send them."""
    form = page.split('class="edit"', 1)[1].split("</form>", 1)[0]
    values: dict[str, object] = {}
    for m in re.finditer(r'<input id="f-(\w+)" name="\w+" type="(\w+)" value="([^"]*)"', form):
        values[m.group(1)] = html.unescape(m.group(3))
    for m in re.finditer(r'<textarea id="f-(\w+)"[^>]*>(.*?)</textarea>', form, re.S):
        if m.group(1) != "trial_message":
            values[m.group(1)] = html.unescape(m.group(2))
    for m in re.finditer(r'<select id="f-(\w+)".*?</select>', form, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected>', m.group(0))
        values[m.group(1)] = chosen.group(1) if chosen else ""
    checked: dict[str, list[str]] = {}
    for m in re.finditer(r'<input type="checkbox"[^>]*name="(\w+)" value="([^"]*)" checked', form):
        checked.setdefault(m.group(1), []).append(html.unescape(m.group(2)))
    values.update(checked)
    return values


async def test_restore_of_unknown_or_account_revision_is_refused(staff: Staff) -> None:
    await staff.login("alice")
    resp = await staff.post_form("/admin/revisions/999999/restore")
    assert resp.status == 404
    user_rev = staff.app[keys.KB].history("user", "sam")[0]
    resp = await staff.post_form(f"/admin/revisions/{user_rev.id}/restore")
    assert resp.status == 404


async def test_template_compile_errors_are_shown(staff: Staff) -> None:
    await staff.login("sam")
    kb = staff.app[keys.KB]
    before = kb.get_template("greeting")
    resp = await staff.post_form(
        "/admin/templates/greeting", {"text": "こんにちは {% if %}", "description": ""}
    )
    assert resp.status == 422
    text = await resp.text()
    assert "テンプレートの書き方に誤りがあります" in text
    assert "こんにちは {% if %}" in text
    assert kb.get_template("greeting") == before
    resp = await staff.post_form(
        "/admin/templates/greeting",
        {"text": "こんにちは。\r\n{{ retention_days }}日で消えます。", "description": "挨拶"},
    )
    assert resp.status == 303
    assert kb.get_template("greeting").text == "こんにちは。\n{{ retention_days }}日で消えます。"  # type: ignore[union-attr]


async def test_faq_create_and_edit(staff: Staff) -> None:
    await staff.login("sam")
    kb = staff.app[keys.KB]
    data = {
        "id": "test.hours",
        "questions": "何時まで使えますか\n夜も相談できますか",
        "answer": "このチャットは24時間使えます。",
        "topics": ["other"],
        "active": "1",
    }
    resp = await staff.post_form("/admin/faq/new", data)
    assert resp.status == 303, await resp.text()
    entry = kb.get_faq("test.hours")
    assert entry is not None and entry.questions == ("何時まで使えますか", "夜も相談できますか")
    resp = await staff.post_form("/admin/faq/test.hours", {**data, "answer": ""})
    assert resp.status == 422
    assert "回答を入力してください。" in await resp.text()
    resp = await staff.post_form("/admin/faq/test.hours", {**data, "topics": ["nope"]})
    assert "相談内容「nope」は分類表にありません。" in await resp.text()
    resp = await staff.post_form("/admin/faq/test.hours", {**data, "answer": "いつでもどうぞ。"})
    assert resp.status == 303
    assert kb.get_faq("test.hours").answer == "いつでもどうぞ。"  # type: ignore[union-attr]
    listing = await (await staff.client.get("/admin/faq?q=夜も相談")).text()
    assert "test.hours" in listing


async def test_resource_list_search_and_filters(staff: Staff) -> None:
    await staff.login("sam")

    async def rows(query: str) -> str:
        text = await (await staff.client.get(f"/admin/resources?{query}")).text()
        return text.split("<tbody>", 1)[1].split("</tbody>", 1)[0]

    text = await rows("sample=1")
    assert "サンプル市" in text and "よりそいホットライン" not in text
    text = await rows("q=よりそい")
    assert "よりそいホットライン" in text and "サンプル市" not in text
    text = await rows("kind=emergency")
    assert "警察（110番）" in text and "よりそいホットライン" not in text
    text = await rows("coverage=municipality")
    assert "サンプル市" in text and "警察（110番）" not in text
    text = await rows("active=0")
    assert "条件に合う窓口はありません。" in text


async def test_try_a_message_shows_understanding_and_replies_and_stores_nothing(
    staff: Staff,
) -> None:
    await staff.login("sam")
    counts = {t: _count(staff, t) for t in ("conversations", "messages", "revisions")}
    resp = await staff.post_form("/admin/try", {"message": "死にたいです"})
    assert resp.status == 200
    text = await resp.text()
    assert "緊急" in text or "urgent" in text or "concern" in text
    assert "よりそいホットライン" in text and "0120-279-338" in text
    assert "根拠" in text and "crisis" in text
    assert {t: _count(staff, t) for t in counts} == counts
    assert not any(_count(staff, t) for t in ("conversations", "messages") if counts[t] == 0)
    resp = await staff.post_form("/admin/try", {"message": "   "})
    assert resp.status == 422


async def test_preview_of_an_unsaved_edit_shows_before_and_after(staff: Staff) -> None:
    await staff.login("sam")
    kb = staff.app[keys.KB]
    page = await staff.client.get("/admin/resources/yorisoi_hotline")
    form = {
        **_form_of(await page.text()),
        "phone": "03-9999-0000",
        "action": "preview",
        "trial_message": "死にたいです",
    }
    revisions = _count(staff, "revisions")
    resp = await staff.post_form("/admin/resources/yorisoi_hotline", form)
    assert resp.status == 200
    text = await resp.text()
    before, after = text.split('id="h-after"', 1)
    assert "0120-279-338" in before.split('id="h-before"', 1)[1]
    assert "03-9999-0000" in after and "0120-279-338" not in after
    assert kb.get_resource("yorisoi_hotline").phone == "0120-279-338"  # type: ignore[union-attr]
    assert _count(staff, "revisions") == revisions
    # The form keeps the unsaved value so it can be saved next.
    assert 'value="03-9999-0000"' in text


async def test_export_then_import_with_a_diff_and_confirmation(staff: Staff) -> None:
    csrf = await staff.login("sam")
    kb = staff.app[keys.KB]
    resp = await staff.client.get("/admin/export")
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "application/zip"
    assert "attachment" in resp.headers["Content-Disposition"]
    data = await resp.read()
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert sorted(z.namelist()) == ["faq.yaml", "resources.yaml", "templates.yaml"]
        files = {n: z.read(n).decode() for n in z.namelist()}
    assert read_upload("x.zip", data) == kb.export_bundle()
    # Change one phone number in the YAML and upload it as a single file.
    doc = yaml.safe_load(files["resources.yaml"])
    for item in doc["resources"]:
        if item["id"] == "yorisoi_hotline":
            item["phone"] = "03-9999-0000"
    changed = yaml.safe_dump(doc, allow_unicode=True).encode()
    form = aiohttp.FormData()
    form.add_field("csrf_token", csrf)
    form.add_field("file", changed, filename="resources.yaml", content_type="application/yaml")
    resp = await staff.client.post("/admin/import", data=form)
    assert resp.status == 200
    text = await resp.text()
    assert "yorisoi_hotline" in text and "phone" in text and "取り込む" in text
    assert kb.get_resource("yorisoi_hotline").phone == "0120-279-338"  # type: ignore[union-attr]
    payload = re.search(r'name="payload" value="([^"]+)"', text).group(1)  # type: ignore[union-attr]
    resp = await staff.post_form(
        "/admin/import/confirm", {"payload": payload, "filename": "resources.yaml"}
    )
    assert resp.status == 303
    assert resp.headers["Location"] == "/admin/import?msg=imported"
    assert kb.get_resource("yorisoi_hotline").phone == "03-9999-0000"  # type: ignore[union-attr]
    assert kb.history("resource", "yorisoi_hotline")[0].action == "import"
    # Importing the same again changes nothing.
    resp = await staff.post_form(
        "/admin/import/confirm", {"payload": payload, "filename": "resources.yaml"}
    )
    assert resp.headers["Location"] == "/admin/import?msg=nothing"


async def test_import_of_invalid_files_explains_and_changes_nothing(staff: Staff) -> None:
    csrf = await staff.login("sam")
    revisions = _count(staff, "revisions")
    bad_yaml = b"resources:\n  - id: x\n    name: [unclosed\n"
    invalid = "resources:\n  - id: bad_one\n    name: 名前\n    kind: nope\n".encode()
    for filename, body, expected in [
        ("a.yaml", bad_yaml, "YAMLとして読めません"),
        ("b.yaml", invalid, "種類「nope」は分類表にありません。"),
        ("c.txt", b"hello", "zipファイルか、YAMLファイル"),
        ("d.zip", b"PK\x03\x04broken", "zipファイルとして読めません"),
    ]:
        form = aiohttp.FormData()
        form.add_field("csrf_token", csrf)
        form.add_field("file", body, filename=filename)
        resp = await staff.client.post("/admin/import", data=form)
        assert resp.status == 422, filename
        assert expected in await resp.text(), filename
    assert _count(staff, "revisions") == revisions


async def test_export_zip_is_byte_stable(staff: Staff) -> None:
    await staff.login("sam")
    first = await (await staff.client.get("/admin/export")).read()
    second = await (await staff.client.get("/admin/export")).read()
    assert first == second == export_zip(staff.app[keys.KB].export_bundle())


XSS = ["<script>alert(1)</script>", "<img src=x onerror=alert(1)>"]


async def test_everything_typed_is_escaped(staff: Staff) -> None:
    await staff.login("alice")
    data = {
        **RESOURCE,
        "name": XSS[0],
        "description": XSS[1] + " \u202eevil\u202c",
        "notes": '"><svg onload=alert(1)>',
    }
    resp = await staff.post_form("/admin/resources/new", data)
    assert resp.status == 303, await resp.text()
    for path in (
        "/admin/resources",
        "/admin/resources/test_city.desk",
        "/admin/history/resource/test_city.desk",
        "/admin/",
    ):
        text = await (await staff.client.get(path)).text()
        _assert_no_raw_markup(text, path)
        if path != "/admin/":
            assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text, path
    text = await (await staff.client.get("/admin/resources/test_city.desk")).text()
    assert "&lt;img src=x onerror=alert(1)&gt;" in text
    # A typed trial message and a template that prints markup.
    resp = await staff.post_form("/admin/try", {"message": XSS[1] + " 万引き"})
    _assert_no_raw_markup(await resp.text(), "try")
    resp = await staff.post_form(
        "/admin/templates/greeting",
        {
            "text": "<script>alert(2)</script> {{ retention_days }}",
            "action": "preview",
            "trial_message": "こんにちは",
        },
    )
    text = await resp.text()
    assert "<script>alert(2)" not in text and "&lt;script&gt;alert(2)" in text
    # A user name cannot carry markup, and a failed one is shown escaped.
    resp = await staff.post_form("/admin/users", _new_account(XSS[0], "long-enough-pass"))
    assert resp.status == 422
    _assert_no_raw_markup(await resp.text(), "users")
    # The login page echoes the typed name escaped.
    staff.logout_local()
    page = await staff.client.get("/admin/login")
    resp = await staff.client.post(
        "/admin/login",
        data={"name": XSS[1], "password": "x", "csrf_token": csrf_of(await page.text())},
    )
    _assert_no_raw_markup(await resp.text(), "login")


def _new_account(name: str, password: str) -> dict[str, object]:
    """The 「ユーザーを追加」 form for a staff account, the password typed twice."""
    return {"name": name, "role": "staff", "password": password, "password_confirm": password}


def _assert_no_raw_markup(text: str, where: str) -> None:
    for raw in ("<script>alert", "<img src=x", "<svg onload", "onerror=alert(1)>"):
        assert raw not in text, (where, raw)


async def test_users_add_disable_reset_password(staff: Staff) -> None:
    await staff.login("alice")
    kb = staff.app[keys.KB]
    resp = await staff.post_form("/admin/users", _new_account("dan", "short"))
    assert resp.status == 422
    assert "パスワードは10文字以上にしてください。" in await resp.text()
    resp = await staff.post_form("/admin/users", _new_account("dan", "dan-is-my-password"))
    assert "パスワードにユーザー名を含めないでください。" in await resp.text()
    resp = await staff.post_form("/admin/users", _new_account("dan", "blue-river-stone"))
    assert resp.status == 303
    assert kb.verify_password("dan", "blue-river-stone") is not None
    assert kb.history("user", "dan")[0].actor == "alice"
    resp = await staff.post_form(
        "/admin/users/dan/password",
        {"password": "green-field-tree", "password_confirm": "green-field-tree"},
    )
    assert resp.status == 303
    assert kb.verify_password("dan", "green-field-tree") is not None
    resp = await staff.post_form("/admin/users/dan/disable")
    assert resp.status == 303
    assert kb.get_user("dan").disabled  # type: ignore[union-attr]
    resp = await staff.post_form("/admin/users/dan/enable")
    assert not kb.get_user("dan").disabled  # type: ignore[union-attr]
    # The last admin cannot be disabled (a clear message, not an error page).
    resp = await staff.post_form("/admin/users/alice/disable")
    assert resp.status == 422
    assert "最後の管理者は無効にできません。" in await resp.text()
    text = await (await staff.client.get("/admin/users")).text()
    assert "ログインの記録" in text and "alice" in text


async def test_staff_pages_render_for_a_tablet_sized_set_of_pages(staff: Staff) -> None:
    await staff.login("sam")
    for path in ("/admin/", "/admin/templates", "/admin/faq", "/admin/try", "/admin/import"):
        resp = await staff.client.get(path)
        text = await resp.text()
        assert resp.status == 200, path
        assert '<meta name="viewport"' in text and '<html lang="ja">' in text
        # Every visible form control has a label.
        ids = set(re.findall(r'<(?:input|select|textarea) id="([^"]+)"', text))
        labelled = set(re.findall(r'<label for="([^"]+)"', text))
        assert ids <= labelled, (path, ids - labelled)
        assert 'aria-live="polite"' in text
