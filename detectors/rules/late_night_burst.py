"""Many file events packed into one late-night hour."""

from __future__ import annotations

import polars as pl

from detectors import base
from detectors.expressions import count, with_references


class Params(base.Params):
    min_events_per_hour: int
    usual_multiple: float


def detect(evidence: base.Evidence, p: Params) -> pl.LazyFrame:
    files = evidence.source("file_access")
    if files is None:
        return base.empty()
    flagged = evidence.days.filter(
        pl.col("night_peak_hour") >= p.min_events_per_hour,
        pl.col("night_peak_hour")
        > p.usual_multiple * pl.col("night_peak_hour__own_max").fill_null(0),
    )
    return with_references(flagged, files.filter(pl.col("night"))).select(
        "user",
        "local_date",
        "evidence",
        value=pl.col("night_peak_hour"),
        reason=pl.format(
            "{} file events within one late-night hour; usual busiest night hour {}; peers {}",
            count(pl.col("night_peak_hour")),
            count(pl.col("night_peak_hour__own_max")),
            count(pl.col("night_peak_hour__peer")),
        ),
    )
