"""Area detection: prefectures, Tokyo's 23 wards and designated cities named in a message."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from intents.matcher import Views
from intents.normalize import fold
from intents.rules import Place, gazetteer
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


def find_area(views: Views) -> tuple[Area | None, tuple[Evidence, ...]]:
    """Find the place the message names, if any.

    Args:
        views: the message views.

    Returns:
        The area (prefecture and, when named, municipality with JIS codes) and evidence.
    """
    surface = views.surface
    prefs: list[tuple[int, _Name]] = []
    munis: list[tuple[int, _Name]] = []
    taken: list[tuple[int, int]] = []
    for n in _names():
        start = surface.find(n.key)
        while start >= 0:
            end = start + len(n.key)
            if not any(s <= start < e or s < end <= e for s, e in taken):
                taken.append((start, end))
                (munis if n.municipal else prefs).append((start, n))
            start = surface.find(n.key, end)
    if not prefs and not munis:
        return None, ()
    prefs.sort(key=lambda x: x[0])
    munis.sort(key=lambda x: x[0])
    pref = prefs[0][1].place if prefs else None
    muni: Place | None = None
    for _, n in munis:
        if n.place.ambiguous and (pref is None or pref.code != n.place.prefecture_code):
            continue
        if pref is None or pref.code == n.place.prefecture_code:
            muni = n.place
            break
    if muni and pref is None:
        pref = next(p for p in gazetteer().prefectures if p.code == muni.prefecture_code)
    if pref is None:
        return None, ()
    evidence = []
    for start, n in (*prefs[:1], *([m for m in munis if m[1].place is muni][:1])):
        span = views.surface_span(start, start + len(n.key))
        evidence.append(
            Evidence(
                "area", n.place.code, f"area.{n.place.name}", views.analysis.text[slice(*span)]
            )
        )
    area = Area(
        prefecture=pref.name,
        prefecture_code=pref.code,
        municipality=muni.name if muni else None,
        municipality_code=muni.code if muni else None,
    )
    return area, tuple(evidence)
