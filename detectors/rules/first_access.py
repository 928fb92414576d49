"""First use of a system or file share the person has not touched in the baseline window."""

from __future__ import annotations

import polars as pl

from detectors import base
from detectors.expressions import count, usual_and_peers, with_references


class Params(base.Params):
    min_events: int
    min_history_days: int


def detect(evidence: base.Evidence, p: Params) -> pl.LazyFrame:
    files = evidence.source("file_access")
    if files is None:
        return base.empty()
    days = evidence.days.filter(
        pl.col("new_item_events") >= p.min_events,
        pl.col("history_days") >= p.min_history_days,
    )
    items = days.select("user", "local_date", "new_items").explode("new_items")
    touched = files.with_columns(
        system_l=pl.col("system").str.to_lowercase(),
    ).join(items, on=["user", "local_date"], how="inner")
    on_new = touched.filter(
        (pl.col("system_l") == pl.col("new_items")) | (pl.col("share") == pl.col("new_items"))
    ).unique(["source_file", "source_line"])
    return with_references(days, on_new, with_top_secret=True).select(
        "user",
        "local_date",
        "evidence",
        "top_secret",
        value=pl.col("new_item_events"),
        reason=pl.format(
            "first use of {} in {} active days ({} file events); {}",
            pl.col("new_items").list.join(", "),
            count(pl.col("history_days")),
            count(pl.col("new_item_events")),
            usual_and_peers("new_item_events"),
        ),
    )
