"""Bulk downloads, copies or printing in a leaver's final week."""

from __future__ import annotations

import polars as pl

from detectors import base
from detectors.expressions import count, human_bytes, with_references


class Params(base.Params):
    final_days: int
    min_files: int
    min_pages: int
    own_multiple: float


def detect(evidence: base.Evidence, p: Params) -> pl.LazyFrame:
    files = evidence.source("file_access")
    if files is None:
        return base.empty()
    moved = files.filter(pl.col("action").is_in(["download", "copy", "move"]))
    left = (pl.col("last_day") - pl.col("local_date")).dt.total_days()
    final_week = pl.col("last_day").is_not_null() & left.is_between(0, p.final_days - 1)
    n = pl.col("files_downloaded") + pl.col("files_copied") + pl.col("removable_files")
    usual = (
        pl.col("files_downloaded__own")
        + pl.col("files_copied__own")
        + pl.col("removable_files__own")
    ).fill_null(0)
    size = (
        pl.col("files_downloaded_bytes") + pl.col("files_copied_bytes") + pl.col("removable_bytes")
    )
    pages = pl.col("printed_pages")
    bulk = ((n >= p.min_files) & (n > p.own_multiple * usual)) | (
        (pages >= p.min_pages)
        & (pages > p.own_multiple * pl.col("printed_pages__own").fill_null(0))
    )
    flagged = evidence.days.filter(final_week, bulk)
    return with_references(flagged, moved).select(
        "user",
        "local_date",
        "evidence",
        value=n,
        reason=pl.format(
            "{} day(s) before leaving: downloaded or copied {} files ({}), printed {} pages;"
            " usual {} files, {} pages; peers {} files",
            left,
            count(n),
            human_bytes(size),
            count(pages),
            count(usual),
            count(pl.col("printed_pages__own")),
            count(pl.col("files_downloaded__peer") + pl.col("files_copied__peer")),
        ),
    )
