"""Validation of every write, with messages staff understand."""

from __future__ import annotations

from typing import Any

import pytest

from knowledge.validation import (
    ValidationError,
    parse_faq,
    parse_resource,
    parse_template,
    phone_problem,
)


def _resource(**over: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": "city_welfare",
        "name": "市の福祉窓口",
        "kind": "municipal_welfare",
        "description": "暮らしの相談ができます。",
        "coverage": "municipality",
        "municipality_code": "131041",
        "phone": "03-1234-5678",
        "source_url": "https://example.jp/welfare",
        "verified_on": "2026-11-25",
    }
    data.update(over)
    return data


def _errors(data: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ValidationError) as info:
        parse_resource(data)
    return dict(info.value.errors)


@pytest.mark.parametrize(
    "phone",
    [
        "110",
        "119",
        "189",
        "188",
        "#9110",
        "#8891",
        "0120-279-338",
        "0570-078374",
        "03-1234-5678",
        "090-1234-5678",
        "0312345678",
        "０１２０－２７９－３３８",
    ],
)
def test_valid_phones(phone: str) -> None:
    assert parse_resource(_resource(phone=phone)).phone is not None


@pytest.mark.parametrize(
    "phone", ["123", "#91100", "9110", "000-0000-0000", "03-1234-567", "0120-279-338-1", "abc"]
)
def test_invalid_phones(phone: str) -> None:
    errors = _errors(_resource(phone=phone))
    assert "phone" in errors
    assert phone_problem(phone.replace(" ", "")) is not None


def test_full_width_phone_is_normalised() -> None:
    assert parse_resource(_resource(phone="０１２０ー２７９ー３３８")).phone == "0120-279-338"


def test_messages_are_japanese_and_name_the_field() -> None:
    errors = _errors(
        _resource(
            name="",
            kind="space_agency",
            url="ftp://x",
            topics=["theft", "aliens"],
            hours=[{"days": "月火", "opens": "9時", "closes": "17:00"}],
            verified_on="昨日",
            colour="red",
        )
    )
    assert errors["name"] == "名前を入力してください。"
    assert "分類表にありません" in errors["kind"]
    assert "https://" in errors["url"]
    assert "「aliens」" in errors["topics"]
    assert "24時間表記" in errors["hours[1].opens"]
    assert "2026-11-25" in errors["verified_on"]
    assert "使えません" in errors["colour"]
    assert str(ValidationError([("name", "x")])) == "name: x"


def test_contact_details_need_a_source() -> None:
    errors = _errors(_resource(source_url=None, verified_on=None))
    assert "出典URL" in errors["source_url"]
    assert "verified_on" in errors
    # Samples are exempt, guides without a contact need a how-to-find note instead.
    assert parse_resource(_resource(source_url=None, verified_on=None, sample=True)).sample
    errors = _errors(_resource(phone=None, source_url=None, verified_on=None))
    assert "探し方" in errors["notes"]
    # A guide without phone or URL is still a real entry: it needs its source too.
    assert "出典URL" in errors["source_url"]


def test_coverage_codes() -> None:
    assert "municipality_code" in _errors(_resource(municipality_code=None))
    assert "prefecture_code" in _errors(_resource(coverage="prefecture", municipality_code=None))
    assert "prefecture_code" in _errors(
        _resource(coverage="prefecture", prefecture_code="99", municipality_code=None)
    )
    sample = parse_resource(
        _resource(coverage="prefecture", prefecture_code="99", municipality_code=None, sample=True)
    )
    assert sample.prefecture_code == "99"
    assert (
        parse_resource(
            _resource(coverage="prefecture", prefecture_code=13, municipality_code=None)
        ).prefecture_code
        == "13"
    )


def test_hours_accept_day_letters_numbers_and_yaml_sexagesimal() -> None:
    r = parse_resource(
        _resource(
            hours=[
                {"days": "月火水木金祝", "opens": 540, "closes": "17:00"},
                {"days": [5, 6], "opens": "9:30", "closes": "24:00"},
            ]
        )
    )
    assert r.hours[0].days == (0, 1, 2, 3, 4, 7)
    assert r.hours[0].opens == "09:00"
    assert r.hours[1].opens == "09:30" and r.hours[1].closes == "24:00"
    assert "hours" in _errors(
        _resource(always_open=True, hours=[{"days": "月", "opens": "09:00", "closes": "10:00"}])
    )


def test_template_compile_errors_are_reported() -> None:
    with pytest.raises(ValidationError) as info:
        parse_template({"id": "greeting", "text": "こんにちは {{ name "})
    field, message = info.value.errors[0]
    assert field == "text" and "書き方に誤り" in message and "1行目" in message
    with pytest.raises(ValidationError):
        parse_template({"id": "Bad Id!", "text": "x"})
    assert parse_template({"id": "topic_intro.theft", "text": "{{ a }}"}).text == "{{ a }}"


def test_faq_needs_questions_answer_and_known_topics() -> None:
    with pytest.raises(ValidationError) as info:
        parse_faq({"id": "x", "questions": [], "answer": "", "topics": ["nope"]})
    fields = [f for f, _ in info.value.errors]
    assert fields == ["questions", "answer", "topics"]
    entry = parse_faq({"id": "x", "questions": "質問1\n質問2\n質問1", "answer": "答え"})
    assert entry.questions == ("質問1", "質問2")
