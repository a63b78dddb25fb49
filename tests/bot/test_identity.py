"""Pseudonymous user keys."""

from __future__ import annotations

from bot.identity import user_key


def test_key_is_stable_and_hides_the_id() -> None:
    a = user_key("line", "U4af4980629abc", "secret")
    assert a == user_key("line", "U4af4980629abc", "secret")
    assert "U4af4980629abc" not in a
    assert a.startswith("line:")


def test_key_depends_on_secret_and_channel() -> None:
    base = user_key("line", "U1", "s1")
    assert base != user_key("line", "U1", "s2")
    assert base.split(":")[1] != user_key("web", "U1", "s1").split(":")[1]
