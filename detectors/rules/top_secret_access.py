"""Access to 極秘 (top-secret) material beyond the person's usual."""

from __future__ import annotations

import polars as pl

from detectors import base
from detectors.expressions import count, first_references, usual_and_peers


class Params(base.Params):
    min_events: int
    own_multiple: float
    rare_usual_max: float
    rare_severity: base.Severity


def detect(evidence: base.Evidence, p: Params) -> pl.LazyFrame:
    files = evidence.source("file_access")
    if files is None:
        return base.empty()
    n = pl.col("top_secret_events")
    flagged = evidence.days.filter(
        n >= p.min_events,
        n > p.own_multiple * pl.col("top_secret_events__own").fill_null(0),
    )
    refs = (
        files.filter(pl.col("level") == "top_secret")
        .join(flagged.select("user", "local_date"), on=["user", "local_date"], how="semi")
        .group_by("user", "local_date")
        .agg(first_references(), actions=pl.col("action").unique().sort().str.join("/"))
    )
    return flagged.join(refs, on=["user", "local_date"], how="left").select(
        "user",
        "local_date",
        "evidence",
        top_secret=pl.lit(True),
        severity=pl.when(pl.col("top_secret_events__own").fill_null(0) <= p.rare_usual_max)
        .then(pl.lit(p.rare_severity))
        .otherwise(pl.lit(None, dtype=pl.String)),
        value=n,
        reason=pl.format(
            "{} file events ({}) on 極秘 material; {}",
            count(n),
            pl.col("actions"),
            usual_and_peers("top_secret_events"),
        ),
    )
