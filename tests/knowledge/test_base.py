"""KnowledgeBase: rendering, CRUD with revisions, restore, previews and accounts."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from knowledge.base import KnowledgeBase, ReadOnlyError, RenderError, UnknownTemplateError
from knowledge.db import connect
from knowledge.validation import ValidationError


@pytest.fixture
def kb(db_path: Path) -> KnowledgeBase:
    return KnowledgeBase.open(connect(db_path))


def test_open_imports_defaults_once(db_path: Path) -> None:
    kb = KnowledgeBase.open(connect(db_path))
    count = len(kb.recent_changes(limit=1000))
    assert kb.get_resource("police_110") is not None
    assert kb.render("topic_intro.drugs")
    assert all(r.actor == "system" for r in kb.recent_changes(limit=1000))
    again = KnowledgeBase.open(connect(db_path))
    assert len(again.recent_changes(limit=1000)) == count


def test_render_strict_and_cached(kb: KnowledgeBase) -> None:
    kb.save_template({"id": "hello", "text": "こんにちは、{{ who }}さん。\n"}, actor="staff1")
    assert kb.render("hello", who="山田") == "こんにちは、山田さん。"
    with pytest.raises(RenderError):
        kb.render("hello")  # StrictUndefined: a missing variable is an error, not ""
    with pytest.raises(UnknownTemplateError):
        kb.render("no_such_template")
    kb.save_template({"id": "hello", "text": "やあ {{ who }}"}, actor="staff1")
    assert kb.render("hello", who="A") == "やあ A"  # the cache sees the edit


def test_sandbox_blocks_attribute_escapes(kb: KnowledgeBase) -> None:
    kb.save_template({"id": "evil", "text": "{{ ''.__class__.__mro__ }}"}, actor="x")
    with pytest.raises(RenderError):
        kb.render("evil")


def test_edit_from_another_connection_is_seen(db_path: Path, kb: KnowledgeBase) -> None:
    assert kb.render("topic_intro.other")
    other = KnowledgeBase.open(connect(db_path))
    other.save_template({"id": "topic_intro.other", "text": "別の接続から"}, actor="cli")
    assert kb.render("topic_intro.other") == "別の接続から"


def test_revisions_and_restore(kb: KnowledgeBase) -> None:
    old = kb.get_resource("juvenile_support_center")
    assert old is not None
    kb.save_resource(replace(old, phone="03-1111-2222"), actor="staff1")
    kb.save_resource(replace(old, phone="03-1111-2222"), actor="staff1")  # no-op, no revision
    history = kb.history("resource", "juvenile_support_center")
    assert [r.action for r in history] == ["update", "import"]
    assert history[0].actor == "staff1"
    assert history[0].before is not None and history[0].before["phone"] == "0570-085-085"
    assert history[0].after is not None and history[0].after["phone"] == "03-1111-2222"

    restored = kb.restore(history[1].id, actor="admin1")
    assert restored.action == "restore" and restored.actor == "admin1"
    current = kb.get_resource("juvenile_support_center")
    assert current == old
    assert len(kb.history("resource", "juvenile_support_center")) == 3


def test_deactivate_delete_and_restore_faq(kb: KnowledgeBase) -> None:
    kb.deactivate_resource("self_help_ga", actor="staff1")
    res = kb.get_resource("self_help_ga")
    assert res is not None and not res.active
    assert kb.history("resource", "self_help_ga")[0].action == "deactivate"
    assert all(r.id != "self_help_ga" for r in kb.list_resources(active=True))

    kb.delete_faq("darc", actor="staff1")
    assert kb.get_faq("darc") is None
    assert kb.search_faq("ダルクとは") == [] or kb.search_faq("ダルクとは")[0].entry.id != "darc"
    deletion, created = kb.history("faq", "darc")
    with pytest.raises(ValidationError) as info:
        kb.restore(deletion.id, actor="admin1")
    assert "削除" in info.value.errors[0][1]
    kb.restore(created.id, actor="admin1")
    assert kb.search_faq("ダルクとは")[0].entry.id == "darc"


def test_invalid_write_changes_nothing(kb: KnowledgeBase) -> None:
    before = kb.get_resource("police_110")
    count = len(kb.recent_changes(limit=1000))
    with pytest.raises(ValidationError) as info:
        kb.save_resource({"id": "police_110", "name": "", "kind": "emergency"}, actor="x")
    assert ("name", "名前を入力してください。") in info.value.errors
    assert kb.get_resource("police_110") == before
    assert len(kb.recent_changes(limit=1000)) == count
    with pytest.raises(ValidationError):
        kb.save_template({"id": "greeting", "text": "{% if %}"}, actor="x")
    with pytest.raises(ValidationError, match="すでに使われて"):
        kb.save_faq(kb.get_faq("darc"), actor="x", create=True)  # type: ignore[arg-type]


def test_shipped_templates_cannot_be_deleted(kb: KnowledgeBase) -> None:
    with pytest.raises(ValidationError, match="削除できません"):
        kb.delete_template("greeting", actor="x")
    kb.save_template({"id": "extra", "text": "追加"}, actor="x")
    kb.delete_template("extra", actor="x")
    assert not kb.has_template("extra")


def test_preview_overrides_do_not_write(kb: KnowledgeBase) -> None:
    res = kb.get_resource("police_consultation_9110")
    assert res is not None
    view = kb.with_overrides(
        resources=[replace(res, name="プレビュー名")],
        templates=[],
    )
    assert view.get_resource("police_consultation_9110") == res  # stored value unchanged
    names = [r.name for r in view._active_resources()]
    assert "プレビュー名" in names and res.name not in names
    with pytest.raises(ReadOnlyError):
        view.save_resource(res, actor="x")


def test_list_filters_and_search(kb: KnowledgeBase) -> None:
    samples = kb.list_resources(sample=True)
    assert samples and all(r.sample for r in samples)
    crisis = kb.list_resources(kind="crisis_line")
    assert {r.id for r in crisis} >= {"yorisoi_hotline", "inochi_free"}
    found = kb.list_resources(query="いのちの電話")
    assert found[0].id.startswith("inochi")
    assert kb.list_resources(query="0120-279-338")[0].id == "yorisoi_hotline"
    assert kb.list_templates(query="topic_intro.theft")[0].id == "topic_intro.theft"
    assert kb.list_faq(query="ダルク")[0].id == "darc"


def test_users(kb: KnowledgeBase) -> None:
    assert not kb.has_admin()
    admin = kb.add_user("admin", "admin", "correct horse battery")
    assert admin.role == "admin" and not admin.disabled
    hash_row = kb.store.get_user("admin")
    assert hash_row is not None and hash_row[1].startswith("$argon2id$")
    assert "correct horse" not in hash_row[1]
    assert kb.verify_password("admin", "correct horse battery") == admin
    assert kb.verify_password("admin", "wrong password!") is None
    assert kb.verify_password("nobody", "correct horse battery") is None
    with pytest.raises(ValidationError, match="10文字以上"):
        kb.add_user("bob", "staff", "short")
    with pytest.raises(ValidationError, match="すでに使われて"):
        kb.add_user("admin", "staff", "long enough password")
    with pytest.raises(ValidationError, match="admin・staff・counselor"):
        kb.add_user("eve", "root", "long enough password")
    with pytest.raises(ValidationError, match="最後の管理者"):
        kb.disable_user("admin")
    kb.add_user("c1", "counselor", "long enough password", office_id="tokyo")
    kb.disable_user("c1", actor="admin")
    assert kb.verify_password("c1", "long enough password") is None
    kb.set_password("admin", "a brand new password", actor="admin")
    assert kb.verify_password("admin", "a brand new password") is not None
    assert [u.name for u in kb.list_users()] == ["admin", "c1"]
    revisions = kb.history("user", "admin")
    assert [r.action for r in revisions] == ["password", "create"]
    assert all("hash" not in str(r.after) for r in revisions)
    with pytest.raises(ValidationError, match="アカウント"):
        kb.restore(revisions[0].id, actor="admin")


def test_constant_template_is_rendered_once_and_sees_edits(kb: KnowledgeBase) -> None:
    kb.save_template({"id": "plain", "text": "  変わらない文面です。\n"}, actor="staff1")
    assert kb.render("plain") == "変わらない文面です。"
    assert kb.render("plain", unused="x") == "変わらない文面です。"  # extra context is ignored
    kb.save_template({"id": "plain", "text": "新しい文面です。"}, actor="staff1")
    assert kb.render("plain") == "新しい文面です。"


def test_memoised_render_matches_jinja_for_every_context(kb: KnowledgeBase) -> None:
    kb.save_template(
        {"id": "count", "text": "{% if n == 2 %}二件{% else %}{{ n }}件{% endif %}：{{ who }}"},
        actor="staff1",
    )
    for _ in range(2):  # the second round comes from the memo
        assert kb.render("count", n=2, who="A") == "二件：A"
        assert kb.render("count", n=1, who="A") == "1件：A"
        assert kb.render("count", n=True, who="A") == "True件：A"  # True == 1, not the same
        assert kb.render("count", n=1.0, who="A") == "1.0件：A"
        assert kb.render("count", n=3, who="B") == "3件：B"
        assert kb.render("count", n=3, who=["list", "values"]) == "3件：['list', 'values']"
        with pytest.raises(RenderError):
            kb.render("count", n=3)  # a missing variable fails every time, memo or not


def test_random_filter_is_never_memoised(kb: KnowledgeBase) -> None:
    kb.save_template({"id": "dice", "text": "{{ range(1000) | random }}"}, actor="staff1")
    assert len({kb.render("dice") for _ in range(40)}) > 1


def test_writes_to_other_tables_do_not_reload_the_knowledge(
    db_path: Path, kb: KnowledgeBase
) -> None:
    assert kb.render("topic_intro.other")
    loaded = kb._templates
    other = connect(db_path)
    # Another connection writing unrelated tables (as the LINE channel does per event).
    other.execute("CREATE TABLE IF NOT EXISTS unrelated (n INTEGER)")
    other.execute("INSERT INTO unrelated (n) VALUES (1)")
    assert kb.render("topic_intro.other")
    assert kb._templates is loaded
    # A change to the knowledge tables, from any connection and even without the
    # knowledge base's own API, is seen at the next render.
    other.execute("UPDATE templates SET text = '直接の変更' WHERE id = 'topic_intro.other'")
    assert kb.render("topic_intro.other") == "直接の変更"
    assert kb._templates is not loaded
    other.execute("DELETE FROM resources WHERE id = 'police_110'")
    assert all(r.id != "police_110" for r in kb._active_resources())


def test_rolled_back_edit_is_not_kept_in_the_cache(kb: KnowledgeBase) -> None:
    before = kb.render("topic_intro.other")
    with pytest.raises(RuntimeError), kb.store.transaction():
        kb.store.put_template(replace(kb.get_template("topic_intro.other"), text="取り消し"))  # type: ignore[type-var]
        assert kb.render("topic_intro.other") == "取り消し"
        raise RuntimeError("abort")
    assert kb.render("topic_intro.other") == before


def test_steady_block_checks_for_changes_once(db_path: Path, kb: KnowledgeBase) -> None:
    before = kb.render("topic_intro.other")
    other = KnowledgeBase.open(connect(db_path))
    with kb.steady():
        other.save_template({"id": "topic_intro.other", "text": "他から"}, actor="cli")
        assert kb.render("topic_intro.other") == before  # seen by the next turn
        kb.save_template({"id": "greeting", "text": "自分の変更"}, actor="staff1")
        assert kb.render("greeting") == "自分の変更"  # own writes: at once
        assert kb.render("topic_intro.other") == "他から"
        other.save_template({"id": "topic_intro.other", "text": "もう一度"}, actor="cli")
    assert kb.render("topic_intro.other") == "もう一度"
    with kb.steady():  # entering checks
        other.save_template({"id": "topic_intro.other", "text": "三度目"}, actor="cli")
    with kb.steady():
        assert kb.render("topic_intro.other") == "三度目"


def test_deleting_an_unknown_id_says_so_and_changes_nothing(kb: KnowledgeBase) -> None:
    before = len(kb.recent_changes(limit=500))
    for delete, message in (
        (kb.delete_resource, "その窓口は見つかりません。"),
        (kb.delete_faq, "そのFAQは見つかりません。"),
        (kb.delete_template, "その文面は見つかりません。"),
    ):
        with pytest.raises(ValidationError) as info:
            delete("no-such-id", actor="staff1")
        assert info.value.errors == [("id", message)]
    assert len(kb.recent_changes(limit=500)) == before


def test_a_deleted_resource_is_restorable_from_its_revision(kb: KnowledgeBase) -> None:
    kb.delete_resource("self_help_ga", actor="staff1")
    assert kb.get_resource("self_help_ga") is None
    deletion = kb.history("resource", "self_help_ga")[0]
    assert deletion.action == "delete" and deletion.actor == "staff1"
    kb.restore(kb.history("resource", "self_help_ga")[1].id, actor="admin1")
    assert kb.get_resource("self_help_ga") is not None
