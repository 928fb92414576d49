"""Shared polars expressions for detectors: formatting numbers for reasons and picking
evidence references. Each is a small expression function; none collects."""

from __future__ import annotations

import polars as pl

_UNITS = ((1e3, "KB"), (1e6, "MB"), (1e9, "GB"), (1e12, "TB"))


def _trim(number: pl.Expr) -> pl.Expr:
    """1.0 -> "1", 1.25 -> "1.3" (one decimal, trailing .0 dropped)."""
    return number.round(1).cast(pl.String).str.replace(r"\.0$", "")


def human_bytes(value: pl.Expr) -> pl.Expr:
    """Byte counts in decimal units, as people say them.

    >>> pl.select(human_bytes(pl.lit(3_200_000_000.0))).item()
    '3.2 GB'
    >>> pl.select(human_bytes(pl.lit(0.0))).item()
    '0 B'
    """
    chained = (
        pl.when(value.is_null())
        .then(pl.lit("n/a"))
        .when(value < 1e3)
        .then(pl.format("{} B", value.round(0).cast(pl.Int64)))
    )
    for scale, unit in _UNITS:
        chained = chained.when(value < scale * 1e3).then(
            pl.format("{} " + unit, _trim(value / scale))
        )
    return chained.otherwise(pl.format("{} PB", _trim(value / 1e15)))


def count(value: pl.Expr) -> pl.Expr:
    """A count or mean as text: whole numbers plain, means with one decimal; unknown (no
    baseline yet) as ``n/a``.

    >>> pl.select(count(pl.lit(2.0))).item(), pl.select(count(pl.lit(2.35))).item()
    ('2', '2.4')
    """
    return pl.when(value.is_null()).then(pl.lit("n/a")).otherwise(_trim(value))


def percent(share: pl.Expr) -> pl.Expr:
    """0.425 -> "42%"."""
    return (
        pl.when(share.is_null())
        .then(pl.lit("n/a"))
        .otherwise(pl.format("{}%", (share * 100).round(0).cast(pl.Int64)))
    )


def usual_and_peers(feature: str, fmt=count) -> pl.Expr:
    """ "usual X; peers Y" for one feature's own and peer baselines (the own value is the peer
    value for a newcomer, and says so)."""
    own = fmt(pl.col(f"{feature}__own"))
    peer = fmt(pl.col(f"{feature}__peer"))
    label = (
        pl.when(pl.col("baseline") == "own")
        .then(pl.lit("usual"))
        .otherwise(pl.lit("usual (new starter: peers)"))
    )
    return pl.format("{} {}; peers {}", label, own, peer)


def reference() -> pl.Expr:
    """Where an event came from: ``file_access/2024-06-12.csv.gz:1043``."""
    return pl.format("{}:{}", pl.col("source_file"), pl.col("source_line"))


def first_references(limit: int = 5) -> pl.Expr:
    """Up to ``limit`` event references, earliest first, for an aggregation."""
    return (
        reference().sort_by("timestamp", "source_file", "source_line").head(limit).alias("evidence")
    )


def day_references(
    events: pl.LazyFrame, days: pl.LazyFrame, with_top_secret: bool = False
) -> pl.LazyFrame:
    """Per user-day of ``days`` (those a rule flagged): up to five references to its
    ``events`` in ``evidence`` and, with ``with_top_secret``, whether any of them was on 極秘
    material. Only the flagged days' events are read past their key, so a rule pays for
    references to what it found, not to every event of the day."""
    aggregations = [first_references()]
    if with_top_secret:
        aggregations.append((pl.col("level") == "top_secret").any().alias("top_secret"))
    flagged = days.select("user", "local_date").unique()
    return (
        events.join(flagged, on=["user", "local_date"], how="semi")
        .group_by("user", "local_date")
        .agg(aggregations)
    )


def with_references(
    days: pl.LazyFrame, events: pl.LazyFrame, with_top_secret: bool = False
) -> pl.LazyFrame:
    """The user-days a rule flagged with :func:`day_references` to their ``events`` attached
    (``evidence``, and ``top_secret`` when asked for)."""
    refs = day_references(events, days, with_top_secret)
    return days.join(refs, on=["user", "local_date"], how="left")


def on_notice() -> pl.Expr:
    """The person had given notice by the scored day (the roster is read as of that day)."""
    return pl.col("notice_date").is_not_null() & (pl.col("notice_date") <= pl.col("local_date"))
