"""``tsunagu triage`` and ``tsunagu eval``: the JSON-lines contract, bad input, the report."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import main
from bot.cli.triage import run_jsonl

DATA = Path(__file__).resolve().parent.parent / "data"
KEYS = {"topic", "topics", "audience", "age_group", "crisis", "resource_kinds", "evidence"}

pytestmark = pytest.mark.usefixtures("sudachi")


def _run(lines: list[bytes]) -> tuple[int, list[dict]]:
    out = io.StringIO()
    code = run_jsonl(lines, out)
    return code, [json.loads(line) for line in out.getvalue().splitlines()]


def test_jsonl_contract() -> None:
    code, records = _run(
        [
            json.dumps({"text": "80歳の父が万引きで捕まりました"}, ensure_ascii=False).encode(),
            b"",  # blank lines are skipped
            json.dumps({"text": "明日の天気おしえて", "id": 7}, ensure_ascii=False).encode(),
        ]
    )
    assert code == 0 and len(records) == 2
    first, second = records
    assert set(first) >= KEYS
    assert first["topic"] == "theft" and first["topics"][0] == "theft"
    assert first["age_group"] == "elderly" and first["audience"] == "family"
    assert first["resource_kinds"][0] == "community_care_center"
    assert len(first["topics"]) <= 5 and len(first["resource_kinds"]) <= 5
    assert first["crisis"] in ("none", "concern", "urgent")
    assert all({"kind", "label", "rule", "matched"} <= set(e) for e in first["evidence"])
    assert second["id"] == 7 and second["topic"] == "other" and second["resource_kinds"] == []


@pytest.mark.parametrize(
    ("line", "error"),
    [
        (b"{not json", "not valid JSON"),
        (b'{"message": "x"}', '"text" field'),
        (b"[1, 2]", '"text" field'),
        (b'{"text": 42}', "must be a string"),
        (b'{"text": null}', "must be a string"),
        (b"\xff\xfe\x00garbage", "not valid UTF-8"),
        (b"x" * 1_000_001, "too long"),
    ],
)
def test_bad_lines_get_an_error_record(line: bytes, error: str) -> None:
    code, records = _run([line, '{"text": "相談したいです"}'.encode()])
    assert code == 1
    assert error in records[0]["error"]
    assert records[1]["topic"] == "other"  # the next line is still answered


@pytest.mark.parametrize(
    "text",
    ["", "😭😭😭🙏", "\x00\x07\x1b[31m", "あ" * 100_000, "\u202e\u200b", "\ud800"],
)
def test_odd_texts_give_other_or_a_topic_never_a_traceback(text: str) -> None:
    line = json.dumps({"text": text}).encode()
    code, records = _run([line])
    assert code == 0
    assert set(records[0]) >= KEYS


def test_subprocess_jsonl_with_binary_and_empty_stdin(tmp_path: Path) -> None:
    exe = [sys.executable, "-m", "bot", "triage", "--jsonl"]
    payload = '{"text": "しゃぶやめたい"}\n'.encode() + b"\x80\x81\n"
    done = subprocess.run(exe, input=payload, capture_output=True, timeout=60)
    lines = [json.loads(x) for x in done.stdout.decode().splitlines()]
    assert lines[0]["topic"] == "drugs"
    assert "error" in lines[1]
    assert b"Traceback" not in done.stderr
    empty = subprocess.run(exe, input=b"", capture_output=True, timeout=60)
    assert empty.returncode == 0 and empty.stdout == b""


def test_readable_single_message(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["triage", "母（82）が万引きで起訴されるかもしれません"]) == 0
    out = capsys.readouterr().out
    assert "topic:" in out and "legal_support" in out
    assert "evidence:" in out
    assert main(["triage"]) == 2


def test_eval_prints_every_metric(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", str(DATA / "intent_cases.yaml")]) == 0
    out = capsys.readouterr().out
    for label in (
        "topic accuracy",
        "audience accuracy",
        "age-group accuracy",
        "routing hit rate",
        "routing error rate",
        "crisis recall",
        "crisis exact level",
        "urgent recall",
        "false alarm rate",
        "topic accuracy by expected topic",
        "misses",
    ):
        assert label in out


def test_eval_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", str(DATA / "dev.yaml"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    topic = report["metrics"]["topic"]
    assert topic["n"] == 165 and topic["value"] >= 0.9
    assert report["metrics"]["routing_errors"]["value"] == 0
    assert set(report["per_audience"]) == {"self", "family", "supporter", "resident", "unknown"}


def test_eval_bad_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("- {id: x, text: y}\n", "utf-8")
    assert main(["eval", str(bad)]) == 2
    assert "error" in capsys.readouterr().out
    assert main(["eval", str(tmp_path / "missing.yaml")]) == 2
