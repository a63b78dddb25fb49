"""Commands in natural variants, kana spellings and typos; long messages are never commands."""

from __future__ import annotations

import pytest

from bot.dialogue.commands import load_commands, match_command
from bot.dialogue.flowdata import load_flow
from bot.dialogue.registry import lookup, registered


@pytest.mark.parametrize(
    ("text", "command"),
    [
        ("人と話したい", "human"),
        ("ひととはなしたい", "human"),
        ("人とはなしたいです。", "human"),
        ("相談員", "human"),
        ("そうだんいん", "human"),
        ("最初から", "restart"),
        ("さいしよから", "restart"),
        ("最初からお願いします", "restart"),
        ("履歴を消して", "delete"),
        ("りれきをけして", "delete"),
        ("履歴お消して", "delete"),
        ("ヘルプ", "help"),
        ("へるぷ", "help"),
        ("HELP", "help"),
        ("続きから", "resume"),
    ],
)
def test_variants(text: str, command: str, sudachi: None) -> None:
    assert match_command(text) == command


@pytest.mark.parametrize(
    "text",
    ["相談員に話すと警察に伝わりますか", "息子が万引きしました", "消えたい", "はい", "", "   "],
)
def test_not_commands(text: str, sudachi: None) -> None:
    assert match_command(text) is None


def test_every_command_and_data_file_loads(sudachi: None) -> None:
    table = load_commands()
    assert {c for _, c in table.variants} == {"human", "restart", "delete", "help", "resume"}
    for command in ("human", "restart", "delete", "help", "resume"):
        assert lookup("command", command) is not None
    flow = load_flow()
    assert len(flow.menu_topics) <= 12
    assert ("signal", "crisis") in registered()
