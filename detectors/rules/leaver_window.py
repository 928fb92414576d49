"""Activity on or after the person's notice date (the leaver window)."""

from __future__ import annotations

import polars as pl

from detectors import base
from detectors.expressions import on_notice


class Params(base.Params):
    min_events: int


def detect(evidence: base.Evidence, p: Params) -> pl.LazyFrame:
    last = (
        pl.when(pl.col("last_day").is_not_null())
        .then(pl.format(", last day {}", pl.col("last_day")))
        .otherwise(pl.lit(""))
    )
    return evidence.days.filter(on_notice(), pl.col("events") >= p.min_events).select(
        "user",
        "local_date",
        value=(pl.col("local_date") - pl.col("notice_date")).dt.total_days().cast(pl.Float64),
        reason=pl.format("leaver: gave notice on {}{}", pl.col("notice_date"), last),
    )
