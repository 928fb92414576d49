"""Evaluation against a labels file (user, scenario, date): the only code that reads labels.

Definitions (all over the budgeted alerts — what reaches people — in the evaluated range):

* insider recall: labelled people with an alert on at least one of their labelled days;
* user-day recall: labelled user-days that carry an alert;
* precision: alerts that fall on a labelled user-day, out of all alerts;
* detection delay: per detected insider, days from their first labelled day to their first
  alert on or after it; the median over detected insiders.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl

from insiderwatch.readers import FileError


@dataclass(frozen=True)
class Scores:
    name: str
    insiders: int
    detected: int
    user_days: int
    user_days_hit: int
    alerts: int
    true_alerts: int
    median_delay: float | None

    @property
    def insider_recall(self) -> float:
        return self.detected / self.insiders if self.insiders else 0.0

    @property
    def user_day_recall(self) -> float:
        return self.user_days_hit / self.user_days if self.user_days else 0.0

    @property
    def precision(self) -> float:
        return self.true_alerts / self.alerts if self.alerts else 0.0


def read_labels(path: Path) -> pl.DataFrame:
    try:
        labels = pl.read_csv(path, schema_overrides={"user": pl.String, "scenario": pl.String})
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise FileError(str(path), None, f"cannot read labels: {exc}") from exc
    missing = {"user", "scenario", "date"} - set(labels.columns)
    if missing:
        raise FileError(
            str(path), 1, f"labels need columns user, scenario, date; missing {sorted(missing)}"
        )
    parsed = labels.with_columns(
        day=pl.col("date").cast(pl.String).str.to_date("%Y-%m-%d", strict=False)
    )
    bad = parsed.with_row_index("line", offset=2).filter(pl.col("day").is_null())
    if bad.height:
        row = bad.row(0, named=True)
        raise FileError(str(path), row["line"], f"not a date: {row['date']!r}")
    return parsed.select("user", "scenario", "day").unique().sort("user", "day")


def evaluate(alerts: pl.DataFrame, labels: pl.DataFrame, start: date, end: date) -> list[Scores]:
    """Overall scores first, then one per scenario. ``alerts`` needs user_id and alert_date."""
    labels = labels.filter(pl.col("day").is_between(start, end))
    alerts = (
        alerts.filter(pl.col("alert_date").is_between(start, end))
        .select(user=pl.col("user_id"), day=pl.col("alert_date"))
        .unique()
    )
    out = [_scores("all", alerts, labels)]
    for scenario in sorted(labels["scenario"].unique().to_list()):
        subset = labels.filter(pl.col("scenario") == scenario)
        users = subset["user"].unique().implode()
        out.append(_scores(scenario, alerts.filter(pl.col("user").is_in(users)), subset))
    return out


def _scores(name: str, alerts: pl.DataFrame, labels: pl.DataFrame) -> Scores:
    labelled_days = labels.select("user", "day").unique()
    hits = labelled_days.join(alerts, on=["user", "day"], how="semi")
    first = labels.group_by("user").agg(first=pl.col("day").min())
    detected = hits["user"].unique()
    delays = (
        alerts.join(first, on="user")
        .filter(pl.col("day") >= pl.col("first"), pl.col("user").is_in(detected.implode()))
        .group_by("user")
        .agg(delay=(pl.col("day").min() - pl.col("first").first()).dt.total_days())
    )
    true_alerts = alerts.join(labelled_days, on=["user", "day"], how="semi").height
    return Scores(
        name=name,
        insiders=labels["user"].n_unique(),
        detected=detected.len(),
        user_days=labelled_days.height,
        user_days_hit=hits.height,
        alerts=alerts.height,
        true_alerts=true_alerts,
        median_delay=float(delays["delay"].median()) if delays.height else None,
    )


def apply_budget(
    alerts: pl.DataFrame, roster: pl.DataFrame, share: float, minimum: int
) -> pl.DataFrame:
    """The alerts a daily budget of ``share`` × headcount (at least ``minimum``) lets through,
    by each day's rank."""
    from insiderwatch.scoring import headcount

    if alerts.height == 0:
        return alerts
    days = alerts["alert_date"].unique().sort().to_list()
    counts = headcount(roster, days)
    allowed = pl.max_horizontal(
        pl.lit(minimum), (pl.col("headcount").fill_null(0) * share).ceil().cast(pl.Int64)
    )
    return (
        alerts.join(counts, on="alert_date", how="left")
        .filter(pl.col("rank") <= allowed)
        .drop("headcount")
    )
