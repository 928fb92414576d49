"""The HR-triggered lookback on a leaver (METI item 26): what the person did, week by week, over
the months before notice (and since), against their own earlier months and their peers.

Built from the stored user-day features (the daily run's; missing days are built on the way),
so a six-month lookback reads one small file per day, not the raw events.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import polars as pl

from insiderwatch.calendar import workday_expr
from insiderwatch.config import Config
from insiderwatch.detect import days_between
from insiderwatch.features import USER_DAY, ensure_features, peer_groups, roster_lazy
from insiderwatch.store import EventStore, io_paths

# A user id that can never reach a path or a query as anything but a plain token.
USER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MAX_MONTHS = 24

# What the weekly table carries: (column, features summed into it, unit, label).
WEEKLY: tuple[tuple[str, tuple[str, ...], str, str], ...] = (
    ("files_downloaded", ("files_downloaded",), "count", "files downloaded"),
    ("downloaded_bytes", ("files_downloaded_bytes",), "bytes", "bytes downloaded"),
    ("files_copied", ("files_copied",), "count", "files copied"),
    ("copied_bytes", ("files_copied_bytes",), "bytes", "bytes copied"),
    ("removable_files", ("removable_files",), "count", "files to removable media"),
    ("removable_bytes", ("removable_bytes",), "bytes", "bytes to removable media"),
    ("cloud_uploads", ("cloud_uploads", "personal_uploads"), "count", "cloud uploads"),
    (
        "cloud_upload_bytes",
        ("cloud_upload_bytes", "personal_upload_bytes"),
        "bytes",
        "bytes uploaded to cloud",
    ),
    ("printed_pages", ("printed_pages",), "pages", "pages printed"),
    ("external_attachments", ("external_attachments",), "count", "attachments mailed outside"),
    ("top_secret_events", ("top_secret_events",), "count", "極秘 file events"),
    ("secret_events", ("secret_events",), "count", "秘 file events"),
    ("after_hours_events", ("after_hours_events",), "count", "events after hours"),
    ("events", ("events",), "count", "events"),
)
# Channels the verdict looks at, with the weekly columns that measure them.
CHANNELS: dict[str, tuple[str, ...]] = {
    "downloads": ("files_downloaded", "downloaded_bytes"),
    "copies": ("files_copied", "copied_bytes"),
    "removable media": ("removable_files", "removable_bytes"),
    "cloud uploads": ("cloud_uploads", "cloud_upload_bytes"),
    "printing": ("printed_pages",),
    "mail attachments": ("external_attachments",),
    "極秘 access": ("top_secret_events",),
}


class LookbackError(ValueError):
    """A lookback request that cannot run; the message says which field and why."""


@dataclass(frozen=True)
class LookbackRequest:
    user: str
    notice_date: date
    last_day: date | None = None
    months: int = 6

    @property
    def start(self) -> date:
        return months_before(self.notice_date, self.months)


def months_before(day: date, months: int) -> date:
    """The same day of the month ``months`` earlier (clamped to the month's length)."""
    year, month = divmod(day.year * 12 + day.month - 1 - months, 12)
    month += 1
    for dom in range(day.day, 27, -1):
        try:
            return date(year, month, dom)
        except ValueError:
            continue
    return date(year, month, min(day.day, 28))


def _date_field(raw: Mapping[str, Any], name: str, required: bool) -> date | None:
    value = raw.get(name)
    if value in (None, ""):
        if required:
            raise LookbackError(f"{name} is required (YYYY-MM-DD)")
        return None
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise LookbackError(f"{name} must be a date as YYYY-MM-DD, got {value!r}")
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise LookbackError(f"{name} must be a date as YYYY-MM-DD, got {value!r}") from exc


def validate_request(raw: Mapping[str, Any], roster: pl.DataFrame) -> LookbackRequest:
    """A checked request from untrusted input (a DAG run's conf, the CLI)."""
    unknown = sorted(set(raw) - {"user", "notice_date", "last_day", "months"})
    if unknown:
        raise LookbackError(f"unknown field(s): {', '.join(unknown)}")
    user = raw.get("user")
    if not isinstance(user, str) or not USER_ID.fullmatch(user):
        raise LookbackError(
            f"user must be a plain user id (letters, digits, '.', '_', '-'), got {user!r}"
        )
    if user not in set(roster["user"].to_list()):
        raise LookbackError(f"unknown user {user!r}: not on the roster")
    notice = _date_field(raw, "notice_date", required=True)
    last = _date_field(raw, "last_day", required=False)
    if last is not None and notice is not None and last < notice:
        raise LookbackError(f"last_day {last} is before notice_date {notice}")
    months = raw.get("months", 6)
    if isinstance(months, bool) or not isinstance(months, int) or not 1 <= months <= MAX_MONTHS:
        raise LookbackError(f"months must be a whole number from 1 to {MAX_MONTHS}, got {months!r}")
    assert notice is not None
    return LookbackRequest(user, notice, last, months)


@dataclass
class Lookback:
    request: LookbackRequest
    weekly: pl.DataFrame  # one row per week: the WEEKLY columns, phase, holiday/after-hours share
    comparison: pl.DataFrame  # per column: last 30 / 60 days, own earlier months, peers (per day)
    standouts: list[str] = field(default_factory=list)  # channels that stand out, in words
    verdict: str = ""


def _sum_columns() -> list[pl.Expr]:
    return [pl.sum_horizontal(pl.col(f) for f in feats).alias(name) for name, feats, *_ in WEEKLY]


def run_lookback(
    store: EventStore, request: LookbackRequest, config: Config, factor: float = 3.0
) -> Lookback:
    """Weekly table, comparisons and verdict for one person.

    A channel stands out when its daily mean over the last 30 days before notice is at least
    ``factor`` times both the person's own earlier months and the peers' daily mean.
    """
    end = request.last_day or request.notice_date
    days = days_between(request.start, end)
    ensure_features(store, days, config)
    files = store.existing("features", USER_DAY, days)
    if not files:
        raise LookbackError(f"no stored activity between {request.start} and {end}")
    roster = roster_lazy(store)
    groups = peer_groups(roster, 3)
    group = groups.filter(pl.col("user") == request.user).select("peer_group").collect().item()
    peers = groups.filter(pl.col("peer_group") == group, pl.col("user") != request.user)
    # The person's days and their peers' in one read of the period's features (two reads of
    # them, one for each, took twice as long: 0.38 s in a store of 10,000 people).
    wanted = pl.concat([peers.select("user"), pl.LazyFrame({"user": [request.user]})])
    read = (
        pl.scan_parquet(io_paths(files))
        .join(wanted, on="user", how="semi")
        .with_columns(_sum_columns())
        .collect()
    )
    names = [name for name, *_ in WEEKLY]
    own = read.filter(pl.col("user") == request.user)
    weekly = _weekly(own, request, config, names)
    peer_days = read.filter(pl.col("user") != request.user)
    stored = {date.fromisoformat(f.parent.name[5:]) for f in files}
    comparison = _comparison(own, peer_days, request, names, stored)
    standouts = _standouts(comparison, factor)
    earlier_known = comparison["own_earlier"].null_count() == 0
    verdict = (
        "Stands out in the 30 days before notice: " + "; ".join(standouts) + "."
        if standouts
        else "Nothing stands out: the 30 days before notice look like the person's earlier "
        "months and their peers."
        if earlier_known
        else "No earlier history in the store to compare the 30 days before notice with."
    )
    return Lookback(request, weekly, comparison, standouts, verdict)


def _weekly(
    own: pl.DataFrame, request: LookbackRequest, config: Config, names: list[str]
) -> pl.DataFrame:
    """Every week of the period (empty weeks as zeros), Monday first."""
    end = request.last_day or request.notice_date
    first_monday = request.start - timedelta(days=request.start.weekday())
    weeks = pl.DataFrame(
        {"week": pl.date_range(first_monday, end, "1w", eager=True)}, schema={"week": pl.Date}
    )
    workday = workday_expr(pl.col("local_date"), config.site, request.start, end)
    per_week = (
        own.filter(pl.col("local_date").is_between(request.start, end))
        .with_columns(
            week=pl.col("local_date").dt.truncate("1w"),
            holiday_events=pl.when(workday).then(0.0).otherwise(pl.col("events")),
        )
        .group_by("week")
        .agg(
            [
                pl.len().alias("active_days"),
                *[pl.col(n).sum() for n in names],
                pl.col("holiday_events").sum(),
            ]
        )
    )
    notice_week = request.notice_date - timedelta(days=request.notice_date.weekday())
    return (
        weeks.join(per_week, on="week", how="left")
        .with_columns([pl.col(n).fill_null(0) for n in [*names, "holiday_events"]])
        .with_columns(
            pl.col("active_days").fill_null(0),
            mean_file_size=pl.when(pl.col("files_downloaded") + pl.col("files_copied") > 0)
            .then(
                (pl.col("downloaded_bytes") + pl.col("copied_bytes"))
                / (pl.col("files_downloaded") + pl.col("files_copied"))
            )
            .otherwise(0.0),
            after_hours_share=pl.when(pl.col("events") > 0)
            .then(pl.col("after_hours_events") / pl.col("events"))
            .otherwise(0.0),
            holiday_share=pl.when(pl.col("events") > 0)
            .then(pl.col("holiday_events") / pl.col("events"))
            .otherwise(0.0),
            phase=pl.when(pl.col("week") < notice_week)
            .then(pl.lit("before notice"))
            .when(pl.col("week") == notice_week)
            .then(pl.lit("notice week"))
            .otherwise(pl.lit("after notice")),
        )
        .sort("week")
    )


def _per_day(
    frame: pl.DataFrame, start: date, end: date, names: list[str], people: int, stored: set[date]
) -> dict[str, float | None]:
    """Mean per stored day (and person) of each column from start to end exclusive; None when
    the store holds no day in that span."""
    span = sum(1 for d in stored if start <= d < end) * max(1, people)
    if span == 0:
        return dict.fromkeys(names)
    chosen = frame.filter(pl.col("local_date") >= start, pl.col("local_date") < end)
    return {n: float(chosen[n].sum()) / span for n in names}


def _comparison(
    own: pl.DataFrame,
    peers: pl.DataFrame,
    request: LookbackRequest,
    names: list[str],
    stored: set[date],
) -> pl.DataFrame:
    """Per measure, daily means: the person's last 30 and 60 days before notice, their own
    earlier months (the period before those 30 days), and the peers' last 30 days."""
    notice = request.notice_date
    last30, last60 = notice - timedelta(days=30), notice - timedelta(days=60)
    n_peers = peers["user"].n_unique() if peers.height else 0
    rows = {
        "last_30_days": _per_day(own, last30, notice, names, 1, stored),
        "last_60_days": _per_day(own, last60, notice, names, 1, stored),
        "own_earlier": _per_day(own, request.start, last30, names, 1, stored),
        "peers_last_30_days": _per_day(peers, last30, notice, names, n_peers, stored),
    }
    labels = {name: label for name, _, _, label in WEEKLY}
    units = {name: unit for name, _, unit, _ in WEEKLY}
    return pl.DataFrame(
        {
            "measure": names,
            "label": [labels[n] for n in names],
            "unit": [units[n] for n in names],
            **{key: [values[n] for n in names] for key, values in rows.items()},
        },
        schema_overrides={key: pl.Float64 for key in rows},
    )


def amount(value: float, unit: str) -> str:
    """A daily mean as people read it: bytes in KB/MB/GB, counts with one decimal."""
    if unit == "bytes":
        for scale, name in ((1e9, "GB"), (1e6, "MB"), (1e3, "KB")):
            if value >= scale:
                return f"{value / scale:.1f} {name}"
        return f"{value:.0f} B"
    return f"{value:.1f}"


def _standouts(comparison: pl.DataFrame, factor: float) -> list[str]:
    """Channels whose last 30 days are ``factor`` times both the person's earlier months and
    the peers (and not nothing). Without earlier history nothing can stand out against it."""
    by_measure = {r["measure"]: r for r in comparison.iter_rows(named=True)}
    out = []
    for channel, measures in CHANNELS.items():
        for m in measures:
            r = by_measure[m]
            recent, earlier = r["last_30_days"], r["own_earlier"]
            peers = r["peers_last_30_days"] or 0.0
            if recent is None or earlier is None or recent <= 0:
                continue
            if recent >= factor * earlier and recent >= factor * peers:
                unit = r["unit"]
                out.append(
                    f"{channel} ({r['label']}: {amount(recent, unit)} a day; usual "
                    f"{amount(earlier, unit)}; peers {amount(peers, unit)})"
                )
                break
    return out
