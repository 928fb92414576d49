"""Charts for the HTML reports, as inline SVG (the reports load nothing from outside).

Summary charts are drawn with matplotlib. Sparklines are a polyline each: a report can hold
hundreds of them, and a matplotlib figure costs tens of milliseconds where this costs
microseconds. Labels on matplotlib charts are English, as the machine has no Japanese font.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import date
from html import escape

from markupsafe import Markup

SEVERITY_COLOURS = {
    "critical": "#8e1b10",
    "high": "#c0392b",
    "medium": "#e67e22",
    "low": "#f1c40f",
}


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    # Same chart, same bytes: fixed ids in the SVG and no creation date.
    matplotlib.rcParams["svg.hashsalt"] = "insiderwatch"
    import matplotlib.pyplot as plt

    return plt


def svg_of(fig) -> Markup:
    """The figure as an inline ``<svg>`` element (the XML prologue dropped)."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = buf.getvalue()
    pyplot().close(fig)
    return Markup(text[text.index("<svg") :])


def sparkline(
    values: Sequence[float],
    marked: Sequence[bool],
    title: str,
    width: int = 160,
    height: int = 32,
) -> Markup:
    """A line of daily values; marked days (earlier alerts, today) as red dots. ``title``
    becomes the tooltip and the accessible name."""
    pad = 3
    top = max(values) if values and max(values) > 0 else 1.0
    step = (width - 2 * pad) / max(len(values) - 1, 1)
    points = [
        (pad + i * step, height - pad - (v / top) * (height - 2 * pad))
        for i, v in enumerate(values)
    ]
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    dots = "".join(
        f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="#c0392b"/>'
        for (x, y), mark in zip(points, marked, strict=True)
        if mark
    )
    label = escape(title)
    return Markup(
        f'<svg class="spark" role="img" aria-label="{label}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg"><title>{label}</title>'
        f'<polyline fill="none" stroke="#34495e" stroke-width="1.3" points="{line}"/>{dots}</svg>'
    )


def stacked_bars(
    days: Sequence[date],
    series: dict[str, Sequence[float]],
    colours: dict[str, str] | None = None,
    ylabel: str = "",
    width: float = 8.0,
    height: float = 2.4,
) -> Markup:
    """Stacked daily bars, one colour per series, legend outside on the right."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(width, height))
    bottom = [0.0] * len(days)
    palette = plt.get_cmap("tab20")
    for i, (name, values) in enumerate(series.items()):
        colour = (colours or {}).get(name, palette(i % 20))
        ax.bar(days, values, bottom=bottom, label=name, color=colour, width=0.8)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax.set_ylabel(ylabel, fontsize=8)
    ax.tick_params(labelsize=7)
    ax.yaxis.get_major_locator().set_params(integer=True)
    if series:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.autofmt_xdate()
    return svg_of(fig)


def horizontal_bars(labels: Sequence[str], values: Sequence[float], xlabel: str = "") -> Markup:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 0.3 * max(len(labels), 2) + 0.6))
    ax.barh(list(labels)[::-1], list(values)[::-1], color="#5d6d7e")
    ax.set_xlabel(xlabel, fontsize=8)
    ax.tick_params(labelsize=7)
    ax.xaxis.get_major_locator().set_params(integer=True)
    return svg_of(fig)
