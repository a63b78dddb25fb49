"""Area detection: prefectures, Tokyo's 23 wards and designated cities named in a message."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from intents.literals import KeyScan
from intents.matcher import Views
from intents.normalize import fold, normalize
from intents.rules import Place, gazetteer
from intents.tokenizer import reading_of, tokenize
from intents.types import Area, Evidence


@dataclass(frozen=True, slots=True)
class _Name:
    key: str
    place: Place
    municipal: bool


@lru_cache(maxsize=1)
def _names() -> tuple[_Name, ...]:
    g = gazetteer()
    out: list[_Name] = []
    for municipal, places in ((False, g.prefectures), (True, g.municipalities)):
        for p in places:
            for name in (p.name, *p.aliases):
                out.append(_Name(fold(name), p, municipal))
    # Longest first so 北九州市 wins over 九州, 東京都 over 東京.
    return tuple(sorted(out, key=lambda n: -len(n.key)))


def _name_index(names: Iterable[_Name]) -> KeyScan[_Name]:
    """Names of two characters or more, ranked longest first at one position."""
    return KeyScan((n.key, rank, n) for rank, n in enumerate(names) if len(n.key) >= 2)


@lru_cache(maxsize=1)
def _index() -> KeyScan[_Name]:
    return _name_index(_names())


@lru_cache(maxsize=1)
def _reading_index() -> KeyScan[_Name]:
    """Names by their reading, for kana-only writing (とうきょう, おおさか)."""
    out = []
    for n in _names():
        tokens = tokenize(normalize(n.place.name if n.key == fold(n.place.name) else n.key))
        reading = fold("".join(reading_of(t) for t in tokens))
        if len(reading) >= 3:
            out.append(_Name(reading, n.place, n.municipal))
    return _name_index(out)


def find_area(views: Views) -> tuple[Area | None, tuple[Evidence, ...]]:
    """Find the place the message names, if any.

    Args:
        views: the message views.

    Returns:
        The area (prefecture and, when named, municipality with JIS codes) and evidence.
    """
    spans: list[tuple[int, int, _Name]] = [
        (*views.surface_span(i, j), n) for i, j, n in _index().find(views.surface)
    ]
    reading = views.reading
    spans += [
        (*views.token_span(reading, i, j), n)
        for i, j, n in _reading_index().find(reading.text)
        if i in reading.starts and j in reading.ends
    ]
    prefs: list[tuple[int, int, _Name]] = []
    munis: list[tuple[int, int, _Name]] = []
    taken: list[tuple[int, int]] = []
    # Longest first: 北九州市 before 九州, 東京都 before 東京.
    for start, end, n in sorted(spans, key=lambda f: (f[0] - f[1], f[0])):
        if not any(s <= start < e or s < end <= e for s, e in taken):
            taken.append((start, end))
            (munis if n.municipal else prefs).append((start, end, n))
    if not prefs and not munis:
        return None, ()
    prefs.sort(key=lambda x: x[0])
    munis.sort(key=lambda x: x[0])
    pref = prefs[0][2].place if prefs else None
    muni: Place | None = None
    muni_span: tuple[int, int, _Name] | None = None
    for m in munis:
        place = m[2].place
        if place.ambiguous and (pref is None or pref.code != place.prefecture_code):
            continue
        if pref is None or pref.code == place.prefecture_code:
            muni, muni_span = place, m
            break
    if muni and pref is None:
        pref = next(p for p in gazetteer().prefectures if p.code == muni.prefecture_code)
    if pref is None:
        return None, ()
    text = views.analysis.text
    evidence = tuple(
        Evidence("area", n.place.code, f"area.{n.place.name}", text[start:end])
        for start, end, n in (*prefs[:1], *([muni_span] if muni_span else []))
    )
    area = Area(
        prefecture=pref.name,
        prefecture_code=pref.code,
        municipality=muni.name if muni else None,
        municipality_code=muni.code if muni else None,
    )
    return area, evidence
