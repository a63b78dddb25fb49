"""The shipped knowledge: valid, sourced, only reference-listed numbers, every topic covered."""

from __future__ import annotations

from pathlib import Path

import yaml

from knowledge.loader import default_bundle
from knowledge.taxonomy import load_taxonomy

ROOT = Path(__file__).resolve().parents[2]

# The contacts of the project's reference list (shared/reference/README.md, section 3)
# that may be shipped, each with the sources listed there. Nothing else may appear.
REFERENCE = {
    "110": {"https://www.excite.co.jp/news/article/Suumo_28496"},
    "119": {"https://www.city.minamiuonuma.niigata.jp/shoubouhonbu/docs/4193.html"},
    "#9110": {"https://www.excite.co.jp/news/article/Suumo_28496"},
    "189": {"https://www.city.mito.lg.jp/site/kosodate/3422.html"},
    "#8103": {
        "https://www.npa.go.jp/hanzaihigai/whitepaper/w-2020/html/zenbun/part4/s4_1t10.html"
    },
    "#8891": {
        "https://www.npa.go.jp/hanzaihigai/whitepaper/w-2021/html/zenbun/part2/b2_s2_1t03.html"
    },
    "#8008": {"https://www.gov-online.go.jp/cam/no_dvca/dv03/"},
    "0120-279-889": {"https://www.gov-online.go.jp/cam/no_dvca/dv03/"},
    "0120-279-338": {"https://e-town-iwakuni.net/?p=8947"},
    "0570-783-556": {"https://www.news-postseven.com/archives/20201121_1614073.html/2"},
    "0120-783-556": {"https://www.news-postseven.com/archives/20201121_1614073.html/2"},
    "0570-064-556": {"https://www.wic-net.com/material/document/23000/14"},
    "0570-078374": {"https://www.houterasu.or.jp/cgi-bin/toiawase/show_entry.cgi"},
    "0570-085-085": {"https://www.moj.go.jp/content/001421304.pdf"},
}
UNVERIFIED = {"0120-189-783", "0120-8891-77", "050-3541-6420", "#8778", "0120-321-153"}


def test_taxonomy_copy_is_verbatim() -> None:
    shipped = (ROOT / "knowledge" / "data" / "taxonomy.yaml").read_text(encoding="utf-8")
    shared = Path("/work/shared/triage-taxonomy.yaml")
    if shared.exists():  # the shared folder exists only in the development workspace
        assert shipped == shared.read_text(encoding="utf-8")
    assert set(yaml.safe_load(shipped)) >= {"topics", "resource_kinds"}


def test_every_phone_is_from_the_reference_with_its_source() -> None:
    for r in default_bundle().resources:
        if r.sample:
            assert r.phone is None, f"{r.id}: samples carry no phone"
            continue
        # Every non-sample entry, guides included, names the public page it was checked on.
        assert r.source_url and r.verified_on == "2026-11-25", r.id
        assert r.verification_note, r.id
        if r.phone is None and r.url is None:
            assert r.notes, f"{r.id}: a guide must say how to find the local office"
            continue
        if r.phone is not None:
            assert r.phone in REFERENCE, f"{r.id}: {r.phone} is not in the reference list"
            assert r.source_url in REFERENCE[r.phone], r.id


def test_no_unverified_number_anywhere_in_the_data() -> None:
    for path in (ROOT / "knowledge" / "data").rglob("*.yaml"):
        text = path.read_text(encoding="utf-8")
        for number in UNVERIFIED:
            assert number not in text, f"{path.name} contains unverified {number}"


def test_samples_are_marked_and_fictional() -> None:
    samples = [r for r in default_bundle().resources if r.sample]
    kinds = {r.kind for r in samples}
    assert {"community_care_center", "municipal_welfare", "probation_office"} <= kinds
    for r in samples:
        assert "サンプル" in r.name and "実際の連絡先ではありません" in (r.notes or "")
        assert r.municipality_code in (None, "999999")
        assert r.prefecture_code in (None, "99")
        assert r.phone is None and r.url is None


def test_every_topic_has_faq_and_intro_and_every_kind_a_resource() -> None:
    tx = load_taxonomy()
    bundle = default_bundle()
    faq_topics = {t for f in bundle.faq for t in f.topics}
    assert set(tx.topics) <= faq_topics
    template_ids = {t.id for t in bundle.templates}
    assert {f"topic_intro.{t}" for t in tx.topics} <= template_ids
    real_kinds = {r.kind for r in bundle.resources if not r.sample and r.coverage == "national"}
    assert set(tx.resource_kinds) <= real_kinds
