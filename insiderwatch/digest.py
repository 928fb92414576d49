"""The inbound-approach digest (METI item 14): suspicious inbound mail counted per department,
monthly and quarterly, with the trend and a few examples reduced to sender domain and subject.

Three kinds of approach, from external senders only:

- ``expert_network``: mail from a spot-consulting or expert-network platform (``lists
  .expert_networks``) or naming one of ``inbound.expert_network``'s phrases;
- ``headhunting``: mail from a job site (``lists.job_sites``) or naming one of
  ``inbound.headhunting``'s phrases;
- ``information_seeking``: one of ``inbound.information_seeking``'s phrases from a sender
  nobody at the company had mailed with in the ``inbound.known_sender_days`` before.

Mail bodies are scanned, never copied: only the matched phrase leaves this module.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from insiderwatch import charts
from insiderwatch.alerts import spreadsheet_safe
from insiderwatch.config import Config
from insiderwatch.privacy import Identities
from insiderwatch.store import EventStore, io_path, io_paths

CATEGORIES = ("headhunting", "expert_network", "information_seeking")
TREND_PERIODS = {"month": 12, "quarter": 4}
_PERIOD = re.compile(r"^(\d{4})-(\d{2})$|^(\d{4})-?Q([1-4])$")


class DigestError(ValueError):
    """A period that is not ``YYYY-MM`` or ``YYYY-Qn``."""


@dataclass(frozen=True)
class Period:
    kind: str  # month or quarter
    start: date
    end: date

    @property
    def label(self) -> str:
        if self.kind == "month":
            return self.start.strftime("%Y-%m")
        return f"{self.start.year}-Q{(self.start.month - 1) // 3 + 1}"

    def previous(self) -> Period:
        return period_containing(self.start - timedelta(days=1), self.kind)


def _month_end(year: int, month: int) -> date:
    nxt = date(year + month // 12, month % 12 + 1, 1)
    return nxt - timedelta(days=1)


def period_containing(day: date, kind: str) -> Period:
    if kind == "month":
        return Period("month", day.replace(day=1), _month_end(day.year, day.month))
    first = (day.month - 1) // 3 * 3 + 1
    return Period("quarter", date(day.year, first, 1), _month_end(day.year, first + 2))


def parse_period(text: str) -> Period:
    """``2024-06`` (a month) or ``2024-Q2`` (a quarter)."""
    found = _PERIOD.match(text.strip().upper())
    if not found:
        raise DigestError(f"period {text!r}: use YYYY-MM for a month or YYYY-Qn for a quarter")
    if found.group(1):
        month = int(found.group(2))
        if not 1 <= month <= 12:
            raise DigestError(f"period {text!r}: month must be 01–12")
        return period_containing(date(int(found.group(1)), month, 1), "month")
    return period_containing(
        date(int(found.group(3)), (int(found.group(4)) - 1) * 3 + 1, 1), "quarter"
    )


def periods_ending(day: date) -> list[Period]:
    """The digests due on ``day``: the month (and the quarter) that ends on it."""
    due = [p for kind in ("month", "quarter") if (p := period_containing(day, kind)).end == day]
    return due


def _scan(store: EventStore, start: date, end: date) -> pl.LazyFrame | None:
    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    parts = store.existing("events", "mail", days)
    if not parts:
        return None
    return pl.scan_parquet(io_paths(parts)).select(
        "local_date", "direction", "user", "sender", "recipients", "cc", "subject", "body"
    )


def _first_mail_day(store: EventStore) -> date | None:
    days = sorted((store.root / "events" / "mail").glob("date=*"))
    return date.fromisoformat(days[0].name[5:]) if days else None


def _first_match(text: pl.Expr, phrases: tuple[str, ...]) -> pl.Expr:
    if not phrases:
        return pl.lit(None, dtype=pl.String)
    return text.str.extract_many(list(phrases), ascii_case_insensitive=True).list.first()


def classify(
    mail: pl.LazyFrame, config: Config, internal_domains: set[str], start: date
) -> pl.LazyFrame:
    """Inbound approaches dated from ``start`` on: local_date, user, category, sender_domain,
    subject, matched. ``mail`` must also hold the earlier days that decide who is known."""
    inbound_cfg = config.inbound
    sender = pl.col("sender").str.to_lowercase().str.strip_chars()
    domain = sender.str.split("@").list.last()
    text = pl.concat_str(
        [pl.col("subject").fill_null(""), pl.col("body").fill_null("")], separator="\n"
    )
    internal = list(internal_domains)
    inbound = (
        mail.filter(pl.col("direction") == "inbound")
        .with_columns(sender=sender, sender_domain=domain)
        .filter(~pl.col("sender_domain").is_in(internal))
    )
    # Every address mailed with, and the first day it was: inbound senders and the
    # recipients of outbound mail.
    outbound_to = (
        mail.filter(pl.col("direction") == "outbound")
        .select("local_date", address=pl.concat_list("recipients", "cc"))
        .explode("address")
        .select("local_date", pl.col("address").str.to_lowercase().str.strip_chars())
    )
    first_seen = (
        pl.concat([inbound.select("local_date", address=pl.col("sender")), outbound_to])
        .group_by("address")
        .agg(first_seen=pl.col("local_date").min())
    )
    matched = inbound.filter(pl.col("local_date") >= start).with_columns(
        expert=_first_match(text, inbound_cfg.expert_network),
        headhunt=_first_match(text, inbound_cfg.headhunting),
        seeking=_first_match(text, inbound_cfg.information_seeking),
        expert_site=pl.col("sender_domain").is_in(list(config.lists.expert_networks)),
        job_site=pl.col("sender_domain").is_in(list(config.lists.job_sites)),
    )
    return (
        matched.join(first_seen, left_on="sender", right_on="address", how="left")
        .with_columns(
            unknown=pl.col("first_seen").fill_null(pl.col("local_date")) >= pl.col("local_date")
        )
        .with_columns(
            category=pl.when(pl.col("expert_site") | pl.col("expert").is_not_null())
            .then(pl.lit("expert_network"))
            .when(pl.col("job_site") | pl.col("headhunt").is_not_null())
            .then(pl.lit("headhunting"))
            .when(pl.col("unknown") & pl.col("seeking").is_not_null())
            .then(pl.lit("information_seeking")),
            matched=pl.coalesce(
                pl.when(pl.col("expert_site")).then(pl.col("sender_domain")),
                pl.col("expert"),
                pl.when(pl.col("job_site")).then(pl.col("sender_domain")),
                pl.col("headhunt"),
                pl.col("seeking"),
            ),
        )
        .filter(pl.col("category").is_not_null())
        .select("local_date", "user", "category", "sender_domain", "subject", "matched")
    )


@dataclass
class Digest:
    period: Period
    counts: pl.DataFrame  # department, category, this, previous, change
    trend: pl.DataFrame  # period, category, n
    trend_by_department: pl.DataFrame  # department, period, n
    examples: pl.DataFrame  # local_date, category, sender_domain, subject, matched
    total: int
    previous_total: int


def build_digest(store: EventStore, period: Period, config: Config) -> Digest:
    periods = [period]
    first_day = _first_mail_day(store)
    # The trend goes back as far as the store has mail (an empty month before the first
    # day would read as "no approaches", not "no data"); the previous period always shows.
    while len(periods) < TREND_PERIODS[period.kind] and (
        len(periods) < 2 or (first_day is not None and periods[0].start > first_day)
    ):
        periods.insert(0, periods[0].previous())
    start = periods[0].start
    roster = pl.read_parquet(io_path(store.roster_path()))
    internal = set(config.site.internal_domains) | set(
        roster["email"].drop_nulls().str.split("@").list.last().str.to_lowercase().to_list()
    )
    mail = _scan(store, start - timedelta(days=config.inbound.known_sender_days), period.end)
    empty = pl.DataFrame(
        schema={
            "local_date": pl.Date,
            "user": pl.String,
            "category": pl.String,
            "sender_domain": pl.String,
            "subject": pl.String,
            "matched": pl.String,
        }
    )
    found = empty if mail is None else classify(mail, config, internal, start).collect()
    label = {p.label: (p.start, p.end) for p in periods}
    found = (
        found.join(roster.select("user", "department"), on="user", how="left")
        .with_columns(pl.col("department").fill_null("-"))
        .with_columns(
            period=pl.coalesce(
                [
                    pl.when(pl.col("local_date").is_between(s, e)).then(pl.lit(name))
                    for name, (s, e) in label.items()
                ]
            )
        )
        .filter(pl.col("period").is_not_null())
    )
    # The trend always holds the previous period (see above), so it is periods[-2].
    previous = periods[-2].label
    per = found.group_by("department", "category", "period").len()
    keys = ["department", "category"]
    counts = (
        per.filter(pl.col("period") == period.label)
        .select(*keys, this=pl.col("len").cast(pl.Int64))
        .join(
            per.filter(pl.col("period") == previous).select(
                *keys, previous=pl.col("len").cast(pl.Int64)
            ),
            on=keys,
            how="full",
            coalesce=True,
        )
        .with_columns(pl.col("this", "previous").fill_null(0))
        .with_columns(change=pl.col("this") - pl.col("previous"))
    )
    trend = (
        pl.DataFrame({"period": list(label)})
        .join(pl.DataFrame({"category": list(CATEGORIES)}), how="cross")
        .join(
            found.group_by("period", "category").len().rename({"len": "n"}),
            on=["period", "category"],
            how="left",
        )
        .with_columns(pl.col("n").fill_null(0).cast(pl.Int64))
    )
    by_department = (
        found.group_by("department", "period").len().rename({"len": "n"}).sort("department")
    )
    current = found.filter(pl.col("period") == period.label)
    examples = (
        current.sort("local_date", "category", "sender_domain", "subject")
        .group_by("category", maintain_order=True)
        .head(config.inbound.example_limit)
        .select("local_date", "category", "sender_domain", "subject", "matched")
    )
    return Digest(
        period=period,
        counts=counts.sort(["this", "department", "category"], descending=[True, False, False]),
        trend=trend,
        trend_by_department=by_department,
        examples=examples,
        total=current.height,
        previous_total=found.filter(pl.col("period") == previous).height,
    )


def _trend_chart(digest: Digest, names: dict[str, str]) -> Any:
    periods = list(dict.fromkeys(digest.trend["period"].to_list()))
    series = {
        names[c]: [
            int(digest.trend.filter((pl.col("period") == p) & (pl.col("category") == c))["n"].sum())
            for p in periods
        ]
        for c in CATEGORIES
    }
    return charts.stacked_bars(periods, series, ylabel="approaches")


def write_digest(
    store: EventStore, period: Period, config: Config, language: str | None = None
) -> Path:
    """Render the digest for ``period``; returns the HTML file (a CSV of counts beside it)."""
    from insiderwatch.reports import environment, labels

    language = language or config.report.language
    words = labels(language)
    digest = build_digest(store, period, config)
    identities = Identities(pl.read_parquet(io_path(store.roster_path())))

    def hide_people(text: str | None) -> str:
        return identities.replace(text or "", lambda _users: words["shared_name"])

    category_name = {c: words[f"cat_{c}"] for c in CATEGORIES}
    english = {c: c.replace("_", " ") for c in CATEGORIES}
    periods = list(dict.fromkeys(digest.trend["period"].to_list()))
    by_department: dict[str, dict[str, int]] = {}
    for department, name, n in digest.trend_by_department.iter_rows():
        by_department.setdefault(department, {})[name] = int(n)
    folder = store.root / "reports" / "digest"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"inbound-{period.label}.html"
    html = (
        environment()
        .get_template("digest.html.j2")
        .render(
            t=words,
            period=period.label,
            unit=words[f"digest_{period.kind}"],
            total=digest.total,
            previous_total=digest.previous_total,
            counts=[
                {**row, "category": category_name[row["category"]]}
                for row in digest.counts.iter_rows(named=True)
            ],
            chart=_trend_chart(digest, english),
            periods=periods,
            departments=[
                {"department": d, "cells": [by_department[d].get(p, 0) for p in periods]}
                for d in sorted(by_department)
            ],
            examples=[
                {
                    **row,
                    "category": category_name[row["category"]],
                    "subject": hide_people(row["subject"]),
                }
                for row in digest.examples.iter_rows(named=True)
            ],
        )
    )
    target.write_text(html, encoding="utf-8")
    _write_counts_csv(digest, target.with_suffix(".csv"))
    return target


def _write_counts_csv(digest: Digest, path: Path) -> None:
    """The counts for spreadsheets: a department name a spreadsheet would run as a formula is
    prefixed with a quote."""
    with path.open("wb") as fh:  # a local file or an object alike
        _counts_table(digest).write_csv(fh)


def _counts_table(digest: Digest) -> pl.DataFrame:
    return digest.counts.select(
        pl.lit(digest.period.label).alias("period"),
        spreadsheet_safe(pl.col("department")).alias("department"),
        "category",
        pl.col("this").alias("count"),
        "previous",
        "change",
    )
