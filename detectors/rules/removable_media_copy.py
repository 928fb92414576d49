"""Files written to USB sticks and other removable media."""

from __future__ import annotations

import polars as pl

from detectors import base
from detectors.expressions import count, human_bytes, usual_and_peers, with_references


class Params(base.Params):
    min_files: int
    min_bytes: int
    own_multiple: float


def detect(evidence: base.Evidence, p: Params) -> pl.LazyFrame:
    files = evidence.source("file_access")
    if files is None:
        return base.empty()
    size = pl.col("removable_bytes")
    flagged = evidence.days.filter(
        (pl.col("removable_files") >= p.min_files) | (size >= p.min_bytes),
        size > p.own_multiple * pl.col("removable_bytes__own").fill_null(0),
    )
    removable = files.filter(pl.col("destination") == "removable")
    return with_references(flagged, removable, with_top_secret=True).select(
        "user",
        "local_date",
        "evidence",
        "top_secret",
        value=size,
        reason=pl.format(
            "copied {} files ({}) to removable media; {}",
            count(pl.col("removable_files")),
            human_bytes(size),
            usual_and_peers("removable_bytes", human_bytes),
        ),
    )
