"""Small inline-SVG charts for report.html: bars, histograms with a marker, line charts.

No plotting library: the report must be one self-contained HTML file that renders anywhere,
and these three shapes are all it needs. Every function returns an `<svg>` string with a
`<title>` (shown as a tooltip and read by screen readers).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape

PALETTE = ("#3366cc", "#dc3912", "#ff9900", "#109618", "#990099", "#0099c6", "#dd4477")
FONT = "font-family='system-ui, sans-serif' font-size='11'"


def _fmt(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1e9:
        return f"{value / 1e9:.3g}B"
    if abs(value) >= 1e6:
        return f"{value / 1e6:.3g}M"
    if abs(value) >= 1e4:
        return f"{value / 1e3:.3g}k"
    if abs(value) >= 1:
        return f"{value:.4g}"
    return f"{value:.3g}"


def horizontal_bars(
    items: Sequence[tuple[str, float]], title: str, width: int = 640, color: str = PALETTE[0]
) -> str:
    """One bar per (label, value), longest = full width; values printed at the bar's end."""
    row, label_w = 22, 170
    height = row * len(items) + 30
    top = max((v for _, v in items), default=0) or 1
    parts = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' {FONT}>",
        f"<title>{escape(title)}</title>",
        f"<text x='0' y='14' font-weight='bold'>{escape(title)}</text>",
    ]
    usable = width - label_w - 70
    for i, (label, value) in enumerate(items):
        y = 24 + i * row
        w = max(1.0, usable * value / top) if value else 0
        parts.append(
            f"<text x='{label_w - 6}' y='{y + 14}' text-anchor='end'>{escape(label)}</text>"
        )
        parts.append(
            f"<rect x='{label_w}' y='{y + 3}' width='{w:.1f}' height='{row - 6}' fill='{color}'/>"
        )
        parts.append(f"<text x='{label_w + w + 4:.1f}' y='{y + 14}'>{_fmt(value)}</text>")
    parts.append("</svg>")
    return "".join(parts)


def histogram(
    edges: Sequence[float],
    counts: Sequence[float],
    title: str,
    marker: float | None = None,
    marker_label: str = "",
    width: int = 640,
    height: int = 200,
    x_label: str = "",
) -> str:
    """Bars over bins [edges[i], edges[i+1]); an optional vertical marker (e.g. a score cut)."""
    if len(edges) != len(counts) + 1:
        raise ValueError("histogram needs len(edges) == len(counts) + 1")
    left, bottom, top_pad = 50, 30, 24
    plot_w, plot_h = width - left - 10, height - bottom - top_pad
    lo, hi = edges[0], edges[-1]
    span = (hi - lo) or 1
    peak = max(counts, default=0) or 1

    def x_of(v: float) -> float:
        return left + plot_w * (v - lo) / span

    parts = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' {FONT}>",
        f"<title>{escape(title)}</title>",
        f"<text x='0' y='14' font-weight='bold'>{escape(title)}</text>",
        f"<line x1='{left}' y1='{top_pad + plot_h}' x2='{left + plot_w}' y2='{top_pad + plot_h}'"
        " stroke='#444'/>",
        f"<text x='{left - 4}' y='{top_pad + 8}' text-anchor='end'>{_fmt(peak)}</text>",
        f"<text x='{left - 4}' y='{top_pad + plot_h}' text-anchor='end'>0</text>",
        f"<text x='{left}' y='{height - 8}'>{_fmt(lo)}</text>",
        f"<text x='{left + plot_w}' y='{height - 8}' text-anchor='end'>{_fmt(hi)}</text>",
    ]
    if x_label:
        parts.append(
            f"<text x='{left + plot_w / 2}' y='{height - 8}' text-anchor='middle'>"
            f"{escape(x_label)}</text>"
        )
    for i, c in enumerate(counts):
        x0, x1 = x_of(edges[i]), x_of(edges[i + 1])
        h = plot_h * c / peak
        parts.append(
            f"<rect x='{x0:.1f}' y='{top_pad + plot_h - h:.1f}' width='{max(0.5, x1 - x0 - 1):.1f}'"
            f" height='{h:.1f}' fill='{PALETTE[0]}'><title>{_fmt(edges[i])}-{_fmt(edges[i + 1])}:"
            f" {_fmt(c)}</title></rect>"
        )
    if marker is not None and lo <= marker <= hi:
        x = x_of(marker)
        parts.append(
            f"<line x1='{x:.1f}' y1='{top_pad - 4}' x2='{x:.1f}' y2='{top_pad + plot_h}'"
            f" stroke='{PALETTE[1]}' stroke-width='2' stroke-dasharray='4 2'/>"
        )
        parts.append(
            f"<text x='{x + 4:.1f}' y='{top_pad + 6}' fill='{PALETTE[1]}'>"
            f"{escape(marker_label)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def line_chart(
    series: Mapping[str, Sequence[tuple[float, float]]],
    title: str,
    x_label: str = "",
    y_label: str = "",
    width: int = 640,
    height: int = 240,
    log_y: bool = False,
    markers: Sequence[tuple[float, str]] = (),
) -> str:
    """One polyline per named series of (x, y) points, with a legend; each marker (x, label)
    is a dashed vertical line (a stage switch, say)."""
    left, bottom, top_pad, right = 56, 34, 24, 130
    plot_w, plot_h = width - left - right, height - bottom - top_pad
    points = [p for pts in series.values() for p in pts if math.isfinite(p[1])]
    if not points:
        return ""

    def ty(v: float) -> float:
        return math.log10(max(v, 1e-12)) if log_y else v

    xs = [p[0] for p in points]
    ys = [ty(p[1]) for p in points]
    x_lo, x_hi = min(xs), max(xs)
    y_lo, y_hi = min(ys), max(ys)
    x_span = (x_hi - x_lo) or 1
    y_span = (y_hi - y_lo) or 1

    def xy(p: tuple[float, float]) -> str:
        x = left + plot_w * (p[0] - x_lo) / x_span
        y = top_pad + plot_h - plot_h * (ty(p[1]) - y_lo) / y_span
        return f"{x:.1f},{y:.1f}"

    y_top = 10**y_hi if log_y else y_hi
    y_bottom = 10**y_lo if log_y else y_lo
    parts = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' {FONT}>",
        f"<title>{escape(title)}</title>",
        f"<text x='0' y='14' font-weight='bold'>{escape(title)}</text>",
        f"<rect x='{left}' y='{top_pad}' width='{plot_w}' height='{plot_h}' fill='none'"
        " stroke='#bbb'/>",
        f"<text x='{left - 4}' y='{top_pad + 8}' text-anchor='end'>{_fmt(y_top)}</text>",
        f"<text x='{left - 4}' y='{top_pad + plot_h}' text-anchor='end'>{_fmt(y_bottom)}</text>",
        f"<text x='{left}' y='{height - 18}'>{_fmt(x_lo)}</text>",
        f"<text x='{left + plot_w}' y='{height - 18}' text-anchor='end'>{_fmt(x_hi)}</text>",
        f"<text x='{left + plot_w / 2}' y='{height - 4}' text-anchor='middle'>"
        f"{escape(x_label)}</text>",
        f"<text x='12' y='{top_pad + plot_h / 2}' transform='rotate(-90 12 {top_pad + plot_h / 2})'"
        f" text-anchor='middle'>{escape(y_label)}</text>",
    ]
    for x, label in markers:
        if x_lo <= x <= x_hi:
            px = left + plot_w * (x - x_lo) / x_span
            parts.append(
                f"<line x1='{px:.1f}' y1='{top_pad}' x2='{px:.1f}' y2='{top_pad + plot_h}'"
                " stroke='#666' stroke-dasharray='4 3'/>"
                f"<text x='{px + 3:.1f}' y='{top_pad + 10}'>{escape(label)}</text>"
            )
    for i, (name, pts) in enumerate(series.items()):
        color = PALETTE[i % len(PALETTE)]
        good = [p for p in pts if math.isfinite(p[1])]
        if not good:
            continue
        parts.append(
            f"<polyline fill='none' stroke='{color}' stroke-width='2'"
            f" points='{' '.join(xy(p) for p in good)}'><title>{escape(name)}</title></polyline>"
        )
        ly = top_pad + 12 + 16 * i
        parts.append(
            f"<line x1='{left + plot_w + 10}' y1='{ly - 4}' x2='{left + plot_w + 26}'"
            f" y2='{ly - 4}' stroke='{color}' stroke-width='2'/>"
        )
        parts.append(f"<text x='{left + plot_w + 30}' y='{ly}'>{escape(name)}</text>")
    parts.append("</svg>")
    return "".join(parts)
