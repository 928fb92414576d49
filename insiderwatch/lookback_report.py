"""The lookback as a page for HR and the security team: verdict, weekly charts, a time-of-day
heat map, comparisons, the largest file movements and the weekly table. Everything taken from
the data is escaped by the template; the charts are SVG drawn here with fixed English labels."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import polars as pl
from jinja2 import Environment, FileSystemLoader, select_autoescape

from insiderwatch.charts import pyplot, svg_of
from insiderwatch.config import Config
from insiderwatch.lookback import Lookback, amount
from insiderwatch.store import EventStore, io_paths

TEMPLATES = Path(__file__).resolve().parent / "templates"
CHARTED = (
    ("files_downloaded", "files downloaded"),
    ("removable_files", "files to removable media"),
    ("cloud_uploads", "cloud uploads"),
    ("printed_pages", "pages printed"),
    ("external_attachments", "attachments mailed outside"),
    ("top_secret_events", "top-secret file events"),
)
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def weekly_chart(weekly: pl.DataFrame, notice: date) -> str:
    plt = pyplot()
    fig, axes = plt.subplots(len(CHARTED), 1, figsize=(9, 1.4 * len(CHARTED)), sharex=True)
    weeks = weekly["week"].to_list()
    for ax, (column, label) in zip(axes, CHARTED, strict=True):
        values = weekly[column].to_list()
        colours = ["#c0392b" if w + timedelta(days=6) >= notice else "#5d6d7e" for w in weeks]
        ax.bar(weeks, values, width=5, color=colours)
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.axvline(notice, color="#c0392b", linestyle="--", linewidth=1)
    axes[-1].set_xlabel("week (red: notice and after)", fontsize=8)
    return svg_of(fig)


def heatmap_chart(counts: pl.DataFrame) -> str:
    import numpy as np

    plt = pyplot()
    grid = np.zeros((7, 24))
    for row in counts.iter_rows(named=True):
        grid[row["weekday"] - 1, row["hour"]] = row["n"]
    fig, ax = plt.subplots(figsize=(9, 2.6))
    image = ax.imshow(grid, aspect="auto", cmap="Reds")
    ax.set_yticks(range(7), WEEKDAYS, fontsize=7)
    ax.set_xticks(range(0, 24, 2), [f"{h:02d}" for h in range(0, 24, 2)], fontsize=7)
    ax.set_xlabel("hour (site time)", fontsize=8)
    fig.colorbar(image, ax=ax, label="events")
    return svg_of(fig)


def _event_files(store: EventStore, source: str, start: date, end: date) -> list[Path]:
    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    return store.existing("events", source, days)


def heatmap_counts(
    store: EventStore, user: str, start: date, end: date, config: Config
) -> pl.DataFrame:
    """The person's events by weekday (1 = Monday) and local hour over the period."""
    parts = []
    for source in ("logon", "file_access", "print", "web", "device", "mail"):
        files = _event_files(store, source, start, end)
        if files:
            parts.append(
                pl.scan_parquet(io_paths(files)).filter(pl.col("user") == user).select("timestamp")
            )
    if not parts:
        return pl.DataFrame(schema={"weekday": pl.Int8, "hour": pl.Int8, "n": pl.UInt32})
    local = pl.col("timestamp").dt.convert_time_zone(config.site.timezone)
    return (
        pl.concat(parts)
        .group_by(weekday=local.dt.weekday(), hour=local.dt.hour())
        .agg(n=pl.len())
        .collect()
    )


def top_events(
    store: EventStore, user: str, start: date, end: date, config: Config, limit: int = 15
) -> list[dict[str, str]]:
    """The person's largest downloads, copies and uploads in the period, largest first."""
    files = _event_files(store, "file_access", start, end)
    if not files:
        return []
    local = pl.col("timestamp").dt.convert_time_zone(config.site.timezone)
    moved = (
        pl.scan_parquet(io_paths(files))
        .filter(
            pl.col("user") == user,
            pl.col("action").is_in(["download", "copy", "move", "upload"])
            | (pl.col("destination") == "removable"),
        )
        .sort(["bytes", "timestamp", "source_line"], descending=[True, False, False])
        .head(limit)
        .with_columns(when=local.dt.strftime("%Y-%m-%d %H:%M"))
        .collect()
    )
    return [
        {
            "when": r["when"],
            "what": f"{r['action']} to {r['destination'] or 'unknown'}"
            + (f" ({r['classification']})" if r["classification"] else ""),
            "path": r["path"],
            "size": amount(float(r["bytes"] or 0), "bytes"),
            "ref": f"{r['source_file']}:{r['source_line']}",
        }
        for r in moved.iter_rows(named=True)
    ]


def render_lookback(result: Lookback, person: dict, store: EventStore, config: Config) -> str:
    request = result.request
    end = request.last_day or request.notice_date
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"])
    )
    units = dict(zip(result.comparison["measure"], result.comparison["unit"], strict=True))
    comparison = [
        {
            **row,
            **{
                k: "n/a" if row[k] is None else amount(row[k], row["unit"])
                for k in ("last_30_days", "last_60_days", "own_earlier", "peers_last_30_days")
            },
        }
        for row in result.comparison.iter_rows(named=True)
    ]
    units |= {"mean_file_size": "bytes"}
    columns = [*result.comparison["measure"].to_list(), "mean_file_size"]
    weekly = [
        {
            "week": row["week"],
            "phase": row["phase"],
            **{c: amount(float(row[c]), units[c]).removesuffix(".0") for c in columns},
            "after_hours_share": f"{row['after_hours_share']:.0%}",
            "holiday_share": f"{row['holiday_share']:.0%}",
        }
        for row in result.weekly.iter_rows(named=True)
    ]
    columns += ["after_hours_share", "holiday_share"]
    recent = request.notice_date - timedelta(days=60)
    return environment.get_template("lookback.html.j2").render(
        request=request,
        end=end,
        person=person,
        verdict=result.verdict,
        standouts=result.standouts,
        weekly_chart=weekly_chart(result.weekly, request.notice_date),
        heatmap_chart=heatmap_chart(
            heatmap_counts(store, request.user, request.start, end, config)
        ),
        comparison=comparison,
        top_events=top_events(store, request.user, recent, end, config),
        weekly_columns=columns,
        weekly=weekly,
    )
