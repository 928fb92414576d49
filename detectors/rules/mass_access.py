"""Mass reading: far more files or bytes read in a day than the person ever read, and than
their peers read, whatever happens to them next."""

from __future__ import annotations

import polars as pl

from detectors import base
from detectors.expressions import count, human_bytes, with_references


class Params(base.Params):
    min_files: int
    min_bytes: int
    own_max_multiple: float
    peer_multiple: float


def detect(evidence: base.Evidence, p: Params) -> pl.LazyFrame:
    files = evidence.source("file_access")
    if files is None:
        return base.empty()
    read = files.filter(pl.col("action").is_in(["open", "read"]))
    n, size = pl.col("files_read"), pl.col("files_read_bytes")
    # Against the person's busiest day in the window (not their median): a reading day has to
    # dwarf every earlier one, so month-end or a project's busy week is measured against itself.
    by_count = (
        (n >= p.min_files)
        & (n > p.own_max_multiple * pl.col("files_read__own_max").fill_null(0))
        & (n > p.peer_multiple * pl.col("files_read__peer").fill_null(0))
    )
    by_bytes = (
        (size >= p.min_bytes)
        & (size > p.own_max_multiple * pl.col("files_read_bytes__own_max").fill_null(0))
        & (size > p.peer_multiple * pl.col("files_read_bytes__peer").fill_null(0))
    )
    most = (
        pl.when(pl.col("baseline") == "own")
        .then(pl.format("most in a day in the last {} active days", count(pl.col("history_days"))))
        .otherwise(pl.lit("most in a day (new starter: peers)"))
    )
    flagged = evidence.days.filter(by_count | by_bytes)
    return with_references(flagged, read, with_top_secret=True).select(
        "user",
        "local_date",
        "evidence",
        "top_secret",
        value=n,
        reason=pl.format(
            "read {} files ({}) in one day; {}: {} files ({}); usual {} files; peers {} files ({})",
            count(n),
            human_bytes(size),
            most,
            count(pl.col("files_read__own_max")),
            human_bytes(pl.col("files_read_bytes__own_max")),
            count(pl.col("files_read__own")),
            count(pl.col("files_read__peer")),
            human_bytes(pl.col("files_read_bytes__peer")),
        ),
    )
