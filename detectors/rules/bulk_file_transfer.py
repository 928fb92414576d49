"""Bulk download or copy against the person's own and the peer group's baseline."""

from __future__ import annotations

import polars as pl

from detectors import base
from detectors.expressions import count, human_bytes, with_references


class Params(base.Params):
    min_files: int
    min_bytes: int
    own_multiple: float
    peer_multiple: float


def detect(evidence: base.Evidence, p: Params) -> pl.LazyFrame:
    files = evidence.source("file_access")
    if files is None:
        return base.empty()
    moved = files.filter(
        pl.col("action").is_in(["download", "copy", "move"]),
        pl.col("destination").fill_null("") != "removable",
    )
    n = pl.col("files_downloaded") + pl.col("files_copied")
    size = pl.col("files_downloaded_bytes") + pl.col("files_copied_bytes")
    own_n = pl.col("files_downloaded__own") + pl.col("files_copied__own")
    own_b = pl.col("files_downloaded_bytes__own") + pl.col("files_copied_bytes__own")
    peer_n = pl.col("files_downloaded__peer") + pl.col("files_copied__peer")
    peer_b = pl.col("files_downloaded_bytes__peer") + pl.col("files_copied_bytes__peer")
    by_count = (
        (n >= p.min_files)
        & (n > p.own_multiple * own_n.fill_null(0))
        & (n > p.peer_multiple * peer_n.fill_null(0))
    )
    by_bytes = (
        (size >= p.min_bytes)
        & (size > p.own_multiple * own_b.fill_null(0))
        & (size > p.peer_multiple * peer_b.fill_null(0))
    )
    label = (
        pl.when(pl.col("baseline") == "own")
        .then(pl.lit("usual"))
        .otherwise(pl.lit("usual (new starter: peers)"))
    )
    flagged = evidence.days.filter(by_count | by_bytes)
    return with_references(flagged, moved, with_top_secret=True).select(
        "user",
        "local_date",
        "evidence",
        "top_secret",
        value=n,
        reason=pl.format(
            "downloaded or copied {} files ({}); {} {} files ({}); peers {} files ({})",
            count(n),
            human_bytes(size),
            label,
            count(own_n),
            human_bytes(own_b),
            count(peer_n),
            human_bytes(peer_b),
        ),
    )
