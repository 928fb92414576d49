"""People on the short list of those who know a whole process."""

from __future__ import annotations

import polars as pl

from detectors import base


class Params(base.Params):
    min_events: int


def detect(evidence: base.Evidence, p: Params) -> pl.LazyFrame:
    return evidence.days.filter(pl.col("priority"), pl.col("events") >= p.min_events).select(
        "user",
        "local_date",
        value=pl.lit(1.0),
        reason=pl.lit("priority person: knows a whole protected process"),
    )
