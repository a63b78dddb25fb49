"""Server-side SVG charts for the statistics page (bar and line), with 「5未満」 drawn, not leaked.

Why hand-written SVG and not a chart library: the staff pages run under a strict CSP (no
inline script or style, nothing from other origins), the charts needed are two simple kinds,
and a report cell that is hidden carries no number at all (``Cell.value is None``), so the
drawing code cannot leak it. A few dozen lines of SVG with presentation attributes (no
``style``) render the same in every browser, print well, and need no JavaScript.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import pairwise
from xml.sax.saxutils import escape

from handoff.stats import COMPLEMENT, SUPPRESS_BELOW, SUPPRESSED, Row, Table

FONT = "font-family=\"system-ui, -apple-system, 'Hiragino Sans', 'Noto Sans CJK JP', sans-serif\""
BAR = "#2f6f9f"
SMALL = "#8a8f98"
GRID = "#d8dde3"
INK = "#1f2328"
WIDTH = 680


def _attr(value: str) -> str:
    return escape(value, {'"': "&quot;"})


def _nice_max(value: float) -> float:
    """A round upper bound of the axis (1, 2, 5 × 10^n), at least the suppression line."""
    value = max(value, SUPPRESS_BELOW)
    exp = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if step * exp >= value:
            return step * exp
    return 10 * exp


def _fit(label: str, limit: int = 16) -> str:
    """A label short enough for the label column (the full one is in the tooltip)."""
    return label if len(label) <= limit else label[: limit - 1] + "…"


def _divisions(top: float) -> int:
    """Grid divisions giving whole-number ticks for 1, 2, 5 × 10^n maxima."""
    return 4 if f"{top:g}".startswith("2") else 5


def _open(chart_id: str, title: str, height: int) -> list[str]:
    tid = f"{chart_id}-title"
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{_attr(chart_id)}" '
        f'viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" role="img" '
        f'aria-labelledby="{tid}" {FONT} font-size="13" fill="{INK}">',
        f'<title id="{tid}">{escape(title)}</title>',
        f'<rect x="0" y="0" width="{WIDTH}" height="{height}" fill="#ffffff"/>',
    ]


def bar_chart(table: Table, chart_id: str | None = None) -> str:
    """A horizontal bar chart of a table's rows (Japanese labels on the left).

    A 「5未満」 row is drawn as a dashed outline up to 5 (the most it can be) and labelled
    「5未満」; a 「秘匿」 row gets its label and no bar.

    Args:
        table: the report table.
        chart_id: id of the ``<svg>`` element (defaults to ``chart-<table id>``).

    Returns:
        SVG markup.
    """
    rows: Sequence[Row] = table.rows
    label_w, value_w, row_h, top = 230, 70, 26, 12
    plot_w = WIDTH - label_w - value_w - 10
    height = top * 2 + row_h * max(1, len(rows)) + 18
    shown = [r.cell.value for r in rows if r.cell.value is not None]
    top_value = _nice_max(max(shown, default=0))
    scale = plot_w / top_value
    out = _open(chart_id or f"chart-{table.id}", table.title, height)
    axis_y = top + row_h * max(1, len(rows))
    div = _divisions(top_value)
    for i in range(div + 1):
        v = top_value * i / div
        x = label_w + v * scale
        out.append(
            f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{axis_y}" stroke="{GRID}"/>'
            f'<text x="{x:.1f}" y="{axis_y + 15}" text-anchor="middle" font-size="11" '
            f'fill="#57606a">{v:g}</text>'
        )
    for i, row in enumerate(rows):
        y = top + i * row_h
        mid = y + row_h / 2 + 4
        out.append(
            f'<text x="{label_w - 8}" y="{mid:.1f}" text-anchor="end">'
            f"<title>{escape(row.label)}</title>{escape(_fit(row.label))}</text>"
        )
        cell = row.cell
        if cell.value is not None:
            w = cell.value * scale
            out.append(
                f'<rect class="bar" x="{label_w}" y="{y + 5}" width="{w:.1f}" '
                f'height="{row_h - 10}" fill="{BAR}"><title>{escape(row.label)}: '
                f"{escape(cell.text)}</title></rect>"
            )
            out.append(
                f'<text class="value" x="{label_w + w + 6:.1f}" y="{mid:.1f}">'
                f"{escape(cell.text)}</text>"
            )
        elif cell.text == SUPPRESSED:
            w = SUPPRESS_BELOW * scale
            out.append(
                f'<rect class="bar small" x="{label_w}" y="{y + 5}" width="{w:.1f}" '
                f'height="{row_h - 10}" fill="none" stroke="{SMALL}" stroke-dasharray="4 3">'
                f"<title>{escape(row.label)}: {SUPPRESSED}</title></rect>"
            )
            out.append(
                f'<text class="value" x="{label_w + w + 6:.1f}" y="{mid:.1f}" '
                f'fill="{SMALL}">{SUPPRESSED}</text>'
            )
        else:
            out.append(
                f'<text class="value" x="{label_w + 6}" y="{mid:.1f}" fill="{SMALL}">'
                f"{escape(cell.text or COMPLEMENT)}</text>"
            )
    out.append(
        f'<line x1="{label_w}" y1="{top}" x2="{label_w}" y2="{axis_y}" stroke="{INK}"/></svg>'
    )
    return "\n".join(out)


def line_chart(table: Table, chart_id: str | None = None) -> str:
    """A line chart of a series (e.g. consultations per day).

    Points whose count is hidden sit in a shaded band from 0 to 5 labelled 「5未満」 (drawn
    only when there is such a point), as hollow markers: the band says "fewer than 5" and
    the position says nothing more.

    Args:
        table: the report table (rows in time order).
        chart_id: id of the ``<svg>`` element (defaults to ``chart-<table id>``).

    Returns:
        SVG markup.
    """
    rows = table.rows
    left, right, top, bottom = 48, 16, 16, 40
    height = 280
    plot_w = WIDTH - left - right
    plot_h = height - top - bottom
    shown = [r.cell.value for r in rows if r.cell.value is not None]
    top_value = _nice_max(max(shown, default=0))
    n = max(1, len(rows))
    step = plot_w / max(1, n - 1)

    def y_of(v: float) -> float:
        return top + plot_h - v / top_value * plot_h

    out = _open(chart_id or f"chart-{table.id}", table.title, height)
    div = _divisions(top_value)
    for i in range(div + 1):
        v = top_value * i / div
        y = y_of(v)
        out.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{WIDTH - right}" y2="{y:.1f}" stroke="{GRID}"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" '
            f'fill="#57606a">{v:g}</text>'
        )
    hidden = [r for r in rows if r.cell.value is None and r.cell.text]
    band_mid = y_of(SUPPRESS_BELOW / 2)
    if hidden:
        y5 = y_of(SUPPRESS_BELOW)
        out.append(
            f'<rect class="band" x="{left}" y="{y5:.1f}" width="{plot_w}" '
            f'height="{y_of(0) - y5:.1f}" fill="#eef1f4"/>'
            f'<text class="band-label" x="{WIDTH - right - 4}" y="{y5 + 13:.1f}" '
            f'text-anchor="end" font-size="11" fill="{SMALL}">{SUPPRESSED}</text>'
        )
    points = []
    for i, row in enumerate(rows):
        x = left + (i * step if n > 1 else plot_w / 2)
        y = y_of(row.cell.value) if row.cell.value is not None else band_mid
        points.append((x, y, row))
    for (x1, y1, r1), (x2, y2, r2) in pairwise(points):
        # A segment touching a hidden point is dashed grey: its height there means nothing.
        if r1.cell.value is not None and r2.cell.value is not None:
            style = f'stroke="{BAR}" stroke-width="2"'
        else:
            style = f'stroke="{SMALL}" stroke-width="1.5" stroke-dasharray="4 3"'
        out.append(f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" {style}/>')
    every = max(1, math.ceil(n / 10))
    for i, (x, y, row) in enumerate(points):
        tip = f"<title>{escape(row.label)}: {escape(row.cell.text)}</title>"
        if row.cell.value is not None:
            out.append(
                f'<circle class="point" cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{BAR}">'
                f"{tip}</circle>"
            )
        else:
            out.append(
                f'<circle class="point small" cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="#ffffff" '
                f'stroke="{SMALL}" stroke-width="1.5">{tip}</circle>'
            )
        if i % every == 0:
            out.append(
                f'<text x="{x:.1f}" y="{height - bottom + 18}" text-anchor="middle" '
                f'font-size="11" fill="#57606a">{escape(row.label)}</text>'
            )
    out.append(
        f'<line x1="{left}" y1="{y_of(0):.1f}" x2="{WIDTH - right}" y2="{y_of(0):.1f}" '
        f'stroke="{INK}"/></svg>'
    )
    return "\n".join(out)


def chart(table: Table) -> str:
    """The chart of a table as its ``chart`` field says ("" for none)."""
    if table.chart == "line":
        return line_chart(table)
    if table.chart == "bar":
        return bar_chart(table)
    return ""
