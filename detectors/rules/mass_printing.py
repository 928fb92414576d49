"""Printing far more pages than usual."""

from __future__ import annotations

import polars as pl

from detectors import base
from detectors.expressions import count, usual_and_peers, with_references


class Params(base.Params):
    min_pages: int
    own_multiple: float
    peer_multiple: float


def detect(evidence: base.Evidence, p: Params) -> pl.LazyFrame:
    prints = evidence.source("print")
    if prints is None:
        return base.empty()
    pages = pl.col("printed_pages")
    flagged = evidence.days.filter(
        pages >= p.min_pages,
        pages > p.own_multiple * pl.col("printed_pages__own").fill_null(0),
        pages > p.peer_multiple * pl.col("printed_pages__peer").fill_null(0),
    )
    return with_references(flagged, prints).select(
        "user",
        "local_date",
        "evidence",
        value=pages,
        reason=pl.format(
            "printed {} pages in {} job(s); {}",
            count(pages),
            count(pl.col("print_jobs")),
            usual_and_peers("printed_pages"),
        ),
    )
