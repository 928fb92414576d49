"""Landing folder -> canonical, checked events in the store, bad rows in quarantine.

Per source: read the files in the window, type every column from the canonical schema, check
each row (reasons collected as words), run the Great Expectations gate per source-day, drop exact
duplicates, and replace each day's partition. The counts reconcile by construction and are
checked before anything is written: rows read = stored + quarantined + duplicates.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import polars as pl

from insiderwatch.calendar import fixed_offset, span_of, utc_from_wall_clock, wall_clock
from insiderwatch.config import Config, LimitsConfig
from insiderwatch.quality import GateResult, QualityGate
from insiderwatch.readers import (
    LINE,
    ORIGIN_FILE,
    REJECT,
    REJECT_RAW,
    SUFFIXES,
    FileError,
    RawBatch,
    file_day,
    inside_landing,
    landing_suffix,
    read_landing_file,
)
from insiderwatch.store import QUARANTINE_SCHEMA, EventStore, io_path
from schemas.canonical import (
    CLASSIFICATION_ALIASES,
    EVENT_SOURCES,
    HR,
    MAX_FIELD_CHARS,
    SOURCES,
    Column,
    Source,
)

REASONS = "_reasons"
FILE = "source_file"
FILE_DAY = "_file_day"
ROSTER_FILE = Path("hr") / "employees.csv"

_DTYPES: dict[str, pl.DataType] = {
    "str": pl.String(),
    "int": pl.Int64(),
    "bool": pl.Boolean(),
    "timestamp": pl.Datetime("us", "UTC"),
    "date": pl.Date(),
    "enum": pl.String(),
    "classification": pl.String(),
    "list": pl.List(pl.String()),
}
_TRUE = ("true", "1", "yes", "y", "t")
_FALSE = ("false", "0", "no", "n", "f", "")


def store_schema(source: Source) -> dict[str, pl.DataType]:
    """Column -> dtype of a source's rows in the event store."""
    schema = {c.name: _DTYPES[c.kind] for c in source.columns}
    if source.name == "mail":
        schema["user"] = pl.String()
        schema["recipient_users"] = pl.List(pl.String())
    schema["local_date"] = pl.Date()
    schema[FILE] = pl.String()
    schema["source_line"] = pl.Int64()
    return schema


@dataclass
class DayCount:
    source: str
    day: date | None
    files: int = 0
    read: int = 0
    stored: int = 0
    quarantined: int = 0
    duplicates: int = 0
    gate: str = ""

    @property
    def reconciles(self) -> bool:
        return self.read == self.stored + self.quarantined + self.duplicates


@dataclass
class IngestReport:
    counts: list[DayCount] = field(default_factory=list)
    errors: list[FileError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    outside_window: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors and not any(c.gate.startswith("failed") for c in self.counts)

    def totals(self) -> dict[str, int]:
        keys = ("read", "stored", "quarantined", "duplicates")
        return {k: sum(getattr(c, k) for c in self.counts) for k in keys}

    def count(self, source: str, day: date | None) -> DayCount:
        for c in self.counts:
            if c.source == source and c.day == day:
                return c
        raise KeyError((source, day))


# --- typing and row checks -------------------------------------------------------------------


def _clean(name: str) -> pl.Expr:
    """The value without surrounding white space; null when nothing is left. (``replace``
    makes the empty text null in one pass; ``when``/``otherwise`` copied every value again, 1.0
    of 1.6 s over five times a day of file access.)"""
    return pl.col(name).str.strip_chars().replace("", None)


def _shown(expr: pl.Expr) -> pl.Expr:
    """A value quoted for a reason, cut short so a reason stays one readable line."""
    return pl.when(expr.str.len_chars() > 40).then(expr.str.slice(0, 40) + "…").otherwise(expr)


def parse_timestamp(expr: pl.Expr, tz: str) -> pl.Expr:
    """ISO-8601 text to a UTC datetime; text without an offset is in ``tz``.

    >>> pl.select(parse_timestamp(pl.lit("2024-04-01 09:00:00"), "Asia/Tokyo")).item()
    datetime.datetime(2024, 4, 1, 0, 0, tzinfo=zoneinfo.ZoneInfo(key='UTC'))
    """
    norm = expr.str.replace(" ", "T", literal=True).str.replace(r"Z$", "+00:00")
    with_offset = pl.coalesce(
        norm.str.to_datetime(
            "%Y-%m-%dT%H:%M:%S%.f%z", strict=False, time_unit="us", time_zone="UTC"
        ),
        norm.str.to_datetime("%Y-%m-%dT%H:%M%z", strict=False, time_unit="us", time_zone="UTC"),
    )
    naive = (
        pl.coalesce(
            norm.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f", strict=False, time_unit="us"),
            norm.str.to_datetime("%Y-%m-%dT%H:%M", strict=False, time_unit="us"),
        )
        .dt.replace_time_zone(tz, non_existent="null", ambiguous="earliest")
        .dt.convert_time_zone("UTC")
    )
    has_offset = norm.str.contains(r"[+-]\d{2}:?\d{2}$")
    return pl.when(has_offset).then(with_offset).otherwise(naive)


# How most exports write time: local time without an offset, or UTC with a ``Z`` (None: local).
_COMMON_SHAPES = (("%Y-%m-%d %H:%M:%S", None), ("%Y-%m-%dT%H:%M:%SZ", "UTC"))


def parse_timestamps(values: pl.Series, tz: str) -> pl.Series:
    """:func:`parse_timestamp` over a column, trying the common shapes first.

    A column written entirely in one of the common shapes (``YYYY-MM-DD HH:MM:SS`` local
    time, ``YYYY-MM-DDTHH:MM:SSZ``) is parsed with that one format; only a column with any
    other value (another offset, fractions, junk, shapes mixed) pays for the general parse, over
    all its rows, so both give the same values. The shape tried is the first value's (with a
    ``Z`` or without).
    """
    first = values.drop_nulls().head(1).to_list()
    for fmt, zone in _COMMON_SHAPES:
        if not first or (zone is not None) != first[0].endswith("Z"):
            continue
        parsed = values.str.to_datetime(fmt, strict=False, time_unit="us")
        common = parsed.dt.replace_time_zone("UTC") if zone else utc_from_wall_clock(parsed, tz)
        if not (common.is_null() & values.is_not_null()).any():
            return common
        break
    return values.to_frame().select(parse_timestamp(pl.col(values.name), tz)).to_series()


Check = tuple[pl.Expr, pl.Expr]  # (the row is wrong when, why in words)


def _typed(column: Column, raw: pl.Expr, tz: str) -> pl.Expr:
    """The typed value of a column from its cleaned text (null where it does not parse)."""
    if column.kind == "str":
        return raw
    if column.kind == "int":
        return raw.cast(pl.Int64, strict=False)
    if column.kind == "bool":
        lowered = raw.str.to_lowercase()
        return (
            pl.when(lowered.is_in(_TRUE))
            .then(True)
            .when(lowered.is_in(_FALSE) | lowered.is_null())
            .then(False)
            .otherwise(None)
        )
    if column.kind == "date":
        return raw.str.to_date("%Y-%m-%d", strict=False)
    if column.kind == "timestamp":
        return parse_timestamp(raw, tz)
    if column.kind == "enum":
        return raw.str.to_lowercase()
    if column.kind == "classification":
        folded = raw.str.to_lowercase().str.replace_all(r"\s+", " ")
        return folded.replace_strict(CLASSIFICATION_ALIASES, default=folded, return_dtype=pl.String)
    if column.kind == "list":
        items = (
            raw.str.split(";")
            .list.eval(pl.element().str.strip_chars())
            .list.eval(pl.element().filter(pl.element() != ""))
        )
        return pl.when(raw.is_null()).then(pl.lit([], dtype=pl.List(pl.String))).otherwise(items)
    raise ValueError(column.kind)  # pragma: no cover - the schema's Kind literal is exhaustive


@dataclass(frozen=True)
class _Seen:
    """What a whole column holds, so that checks no value can fail are left out: counting the
    characters of every value, and looking each up among the allowed ones, were a fifth of
    typing and checking a day of file access."""

    longest: int  # bytes in the longest cleaned value (0 when every value is null)
    values: frozenset[str] | None = None  # the distinct typed values, for few-value kinds

    def may_exceed(self, chars: int) -> bool:
        return self.longest > chars  # a value has at least as many bytes as characters

    def may_be_outside(self, allowed: tuple[str, ...]) -> bool:
        return self.values is None or not self.values <= set(allowed)


def _checks(column: Column, raw: pl.Expr, typed: pl.Expr, seen: _Seen) -> list[Check]:
    """What is wrong with a value, from its cleaned text and its typed value; ``seen`` leaves
    out the checks nothing in the column can fail."""
    name = column.name
    checks: list[Check] = []
    limit = column.max_chars or MAX_FIELD_CHARS
    if column.kind == "list":
        if seen.may_exceed(MAX_FIELD_CHARS):
            checks.append(
                (
                    raw.str.len_chars() > MAX_FIELD_CHARS,
                    pl.lit(f"{name} longer than {MAX_FIELD_CHARS} characters"),
                )
            )
        if not column.nullable:
            checks.append((typed.list.len() == 0, pl.lit(f"missing {name}")))
        return checks
    if seen.may_exceed(limit):
        checks.append(
            (raw.str.len_chars() > limit, pl.lit(f"{name} longer than {limit} characters"))
        )
    if not column.nullable:
        checks.append((raw.is_null(), pl.lit(f"missing {name}")))
    unparsed = raw.is_not_null() & typed.is_null()
    if column.kind == "int":
        checks.append((unparsed, pl.format(f"{name} is not an integer: '{{}}'", _shown(raw))))
        if column.minimum is not None:
            shown = typed.cast(pl.String)
            checks.append(
                (
                    typed < column.minimum,
                    pl.format(f"{name} is negative: {{}}", shown)
                    if column.minimum == 0
                    else pl.format(f"{name} below {column.minimum}: {{}}", shown),
                )
            )
        if column.maximum is not None:
            checks.append(
                (
                    typed > column.maximum,
                    pl.format(
                        f"{name} over the plausible maximum {column.maximum:,}: {{}}",
                        typed.cast(pl.String),
                    ),
                )
            )
    elif column.kind == "bool":
        checks.append((unparsed, pl.format(f"{name} is not true or false: '{{}}'", _shown(raw))))
    elif column.kind == "date":
        checks.append(
            (unparsed, pl.format(f"{name} is not a date (YYYY-MM-DD): '{{}}'", _shown(raw)))
        )
    elif column.kind == "timestamp":
        checks.append((unparsed, pl.format("unparseable timestamp '{}'", _shown(raw))))
    elif column.kind == "enum" and seen.may_be_outside(column.allowed):
        checks.append(
            (
                typed.is_not_null() & ~typed.is_in(column.allowed),
                pl.format(f"unknown {name} '{{}}'", _shown(raw)),
            )
        )
    elif column.kind == "classification" and seen.may_be_outside(column.allowed):
        checks.append(
            (
                typed.is_not_null() & ~typed.is_in(column.allowed),
                pl.format("unknown classification '{}'", _shown(raw)),
            )
        )
    return checks


RAW = "__raw_"  # prefix of the columns that keep a row's values as read


def _raw_json(source: Source) -> pl.Expr:
    """The record as read, as JSON: built only for rows that go to quarantine."""
    return pl.struct(
        [pl.col(RAW + c.name).alias(c.name) for c in source.columns]
    ).struct.json_encode()


_FEW_VALUES = ("enum", "classification")  # kinds whose columns hold a handful of values


def _typed_by_value(values: pl.Series, column: Column, tz: str) -> tuple[pl.Series, frozenset[str]]:
    """:func:`_typed` of a column with few distinct values, computed once per value and
    looked up for every row (classification labels are folded by a regular expression, which
    costs 0.5 s over a day of file access, and 0.05 s over its dozen labels); and the distinct
    typed values."""
    distinct = values.unique().drop_nulls()
    folded = distinct.to_frame().select(_typed(column, pl.col(values.name), tz)).to_series()
    typed = values.replace_strict(distinct, folded, default=None, return_dtype=folded.dtype)
    return typed, frozenset(folded.drop_nulls().to_list())


def type_and_check(frame: pl.DataFrame, source: Source, tz: str) -> pl.DataFrame:
    """Typed canonical columns, the values as read (``__raw_<column>``, for quarantine) and
    ``_reasons`` (list of words).

    Each column is cleaned and typed once, into columns of its own; the checks then read those
    as plain flags, and the words are put together only for the rows that fail one, which are
    few, so a clean day pays for booleans, not for strings.
    """
    columns = source.columns
    clean = {c.name: f"__clean_{c.name}" for c in columns}
    typed = {c.name: f"__typed_{c.name}" for c in columns}
    frame = frame.with_columns(_clean(c.name).alias(clean[c.name]) for c in columns)
    longest = frame.select(
        pl.col(clean[c.name]).str.len_bytes().max().fill_null(0) for c in columns
    ).row(0)
    seen: dict[str, _Seen] = {}
    few: dict[str, pl.Series] = {}
    for c, n in zip(columns, longest, strict=True):
        values = None
        if c.kind in _FEW_VALUES:
            few[c.name], values = _typed_by_value(frame[clean[c.name]], c, tz)
        seen[c.name] = _Seen(n, values)
    frame = frame.with_columns(
        parse_timestamps(frame[clean[c.name]], tz).alias(typed[c.name])
        if c.kind == "timestamp"
        else few[c.name].alias(typed[c.name])
        if c.name in few
        else _typed(c, pl.col(clean[c.name]), tz).alias(typed[c.name])
        for c in columns
    )
    checks = [
        check
        for c in columns
        for check in _checks(c, pl.col(clean[c.name]), pl.col(typed[c.name]), seen[c.name])
    ]
    wrong = frame.select(pl.any_horizontal([c.fill_null(False) for c, _ in checks])).to_series()
    empty = pl.lit([], dtype=pl.List(pl.String))
    if wrong.any():
        words = pl.concat_list(
            [pl.when(c).then(m).cast(pl.String) for c, m in checks]
        ).list.drop_nulls()
        flagged = frame.filter(wrong).select(
            wrong.arg_true().cast(pl.UInt32).alias("_row"), words.alias(REASONS)
        )
        frame = (
            frame.with_row_index("_row")
            .join(flagged, on="_row", how="left", maintain_order="left")
            .drop("_row")
            .with_columns(pl.col(REASONS).fill_null(empty))
        )
    else:
        frame = frame.with_columns(empty.alias(REASONS))
    return (
        frame.drop(*clean.values())
        .rename({c.name: RAW + c.name for c in columns})
        .rename({typed[c.name]: c.name for c in columns})
    )


def _add_reason(condition: pl.Expr, message: pl.Expr) -> pl.Expr:
    return (
        pl.when(condition)
        .then(pl.col(REASONS).list.concat(pl.concat_list(message)))
        .otherwise(pl.col(REASONS))
        .alias(REASONS)
    )


def _with_reasons(frame: pl.DataFrame, checks: list[Check]) -> pl.DataFrame:
    """``frame`` with each check's words added to ``_reasons``, in order, on the rows it flags.

    The words are put together for the flagged rows alone, which are few: an
    :func:`_add_reason` per check builds them for every row (a ``when``/``then`` works out
    both branches), 0.1 s over a day's mail with none to add. So a check and its words must
    read their own row only (no window over other rows, as the roster's "first at line" does:
    among the flagged rows alone it would give another answer)."""
    flagged = frame.select(pl.any_horizontal([c.fill_null(False) for c, _ in checks])).to_series()
    if not flagged.any():
        return frame
    words = (
        frame.filter(flagged)
        .select(
            pl.concat_list(
                [pl.col(REASONS), *[pl.when(c).then(m).cast(pl.String) for c, m in checks]]
            ).list.drop_nulls()
        )
        .to_series()
    )
    at = (flagged.cast(pl.Int64).cum_sum() - 1).clip(lower_bound=0)
    return frame.with_columns(
        pl.when(flagged).then(words.gather(at)).otherwise(pl.col(REASONS)).alias(REASONS)
    )


# --- roster ----------------------------------------------------------------------------------


@dataclass
class Roster:
    frame: pl.DataFrame
    quarantine: pl.DataFrame
    read: int
    warnings: list[str]

    @property
    def users(self) -> pl.Series:
        return self.frame["user"]

    def addresses(self) -> pl.DataFrame:
        """Lower-cased address -> user, from work and personal addresses."""
        work = self.frame.select(address=pl.col("email").str.to_lowercase(), user="user")
        personal = (
            self.frame.select(address="personal_emails", user="user")
            .explode("address")
            .drop_nulls("address")
            .with_columns(pl.col("address").str.to_lowercase())
        )
        return pl.concat([work, personal]).unique("address", keep="first", maintain_order=True)


def load_roster(logs: Path, config: Config) -> Roster:
    path = logs / ROSTER_FILE
    if not path.is_file():
        raise FileError(str(ROSTER_FILE), None, "the HR roster is missing")
    inside_landing(path, logs, str(ROSTER_FILE))
    batch = read_landing_file(path, str(ROSTER_FILE), HR.names, HR.required, config.limits)
    checked = type_and_check(batch.frame, HR, config.site.timezone).with_row_index("_order")
    first_line = pl.col(LINE).min().over("user")
    pattern = config.quality.user_id_pattern
    checked = _with_reasons(
        checked,
        [
            (
                ~pl.col(name).str.contains(pattern),
                pl.format(
                    f"{name} id '{{}}' is not a plain id (quality.user_id_pattern)",
                    _shown(pl.col(name)),
                ),
            )
            for name in ("user", "supervisor")
        ],
    )
    checked = checked.with_columns(
        _add_reason(
            pl.col("user").is_not_null() & (pl.col(LINE) != first_line),
            pl.format("duplicate user id '{}' (first at line {})", pl.col("user"), first_line),
        ),
    ).with_columns(
        _add_reason(
            pl.col("last_day") < pl.col("notice_date"), pl.lit("last_day is before notice_date")
        ),
    )
    bad = checked.filter(pl.col(REASONS).list.len() > 0)
    good = checked.filter(pl.col(REASONS).list.len() == 0)
    warnings = list(batch.warnings)
    known = set(good["user"].to_list())
    for sup in sorted(set(good["supervisor"].drop_nulls().to_list()) - known):
        warnings.append(f"{ROSTER_FILE}: supervisor {sup!r} is not in the roster")
    sourceless = good.filter(pl.col("last_day").is_null() & pl.col("last_day_source").is_not_null())
    if sourceless.height:
        warnings.append(
            f"{ROSTER_FILE}: last_day_source without a last_day on {sourceless.height} line(s), "
            f"first at line {sourceless[LINE].min()}: ignored"
        )
    # A last day HR gives without saying where it came from is HR's own record.
    frame = good.select(list(store_schema(HR).keys())[: len(HR.columns)]).with_columns(
        pl.col("email").str.to_lowercase(),
        pl.col("personal_emails").list.eval(pl.element().str.to_lowercase()),
        pl.col("priority").fill_null(False),
        last_day_source=pl.when(pl.col("last_day").is_not_null()).then(
            pl.col("last_day_source").fill_null("hr")
        ),
    )
    quarantine = pl.concat(
        [
            _quarantine_rows(
                bad.with_columns(
                    pl.lit(str(ROSTER_FILE)).alias(FILE), pl.lit(None, pl.Date).alias("local_date")
                ),
                "hr",
            ),
            _reject_rows(batch, "hr", None),
        ]
    )
    return Roster(frame, quarantine, batch.rows_read, warnings)


class RosterRefused(FileError):
    """The roster is empty or shrunk past ``quality.roster_min_share``: nothing is ingested."""


def refuse_shrunk_roster(roster: Roster, store: EventStore | None, config: Config) -> None:
    """Raise :class:`FileError` for a roster that is empty, or holds fewer people than
    ``quality.roster_min_share`` of the stored one: a cut-off HR export would otherwise make
    every event an unknown user's and replace the stored days with empty ones."""
    people = roster.frame.height
    before = None
    if store is not None and store.roster_path().exists():
        before = pl.scan_parquet(io_path(store.roster_path())).select(pl.len()).collect().item()
    share = config.quality.roster_min_share
    if people == 0:
        why = f"the roster holds nobody ({roster.read} line(s) read)"
    elif before and people < share * before:
        why = (
            f"the roster holds {people:,} people, fewer than {share:.0%} of the {before:,} in "
            "the store (quality.roster_min_share)"
        )
    else:
        return
    raise RosterRefused(
        str(ROSTER_FILE),
        None,
        f"{why}: refusing to {'replace the stored roster or ' if before else ''}ingest against "
        "it; check the HR export, or pass --force-roster if the company really shrank",
    )


# --- events ----------------------------------------------------------------------------------


def _quarantine_rows(frame: pl.DataFrame, source: str) -> pl.DataFrame:
    raw = _raw_json(SOURCES[source])
    if REJECT_RAW in frame.columns:  # a record an adapter could not split: its text
        raw = pl.coalesce(REJECT_RAW, raw)
    return frame.select(
        pl.lit(source).alias("source"),
        pl.col(FILE),
        pl.col(LINE).alias("source_line"),
        pl.col("local_date"),
        pl.col(REASONS).list.join("; ").alias("reason"),
        raw.alias("raw"),
    ).cast(QUARANTINE_SCHEMA)


def _reject_rows(batch: RawBatch, source: str, day: date | None) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "source": [source] * len(batch.rejects),
            "source_file": [batch.file] * len(batch.rejects),
            "source_line": [r.line for r in batch.rejects],
            "local_date": [day] * len(batch.rejects),
            "reason": [r.reason for r in batch.rejects],
            "raw": [r.raw for r in batch.rejects],
        },
        schema=QUARANTINE_SCHEMA,
    )


def _tie_mail(frame: pl.DataFrame, roster: Roster) -> pl.DataFrame:
    """Attach the roster people a mail belongs to, from sender and recipient addresses."""
    addresses = roster.addresses()

    def user_of(address: pl.Expr) -> pl.Expr:
        return address.str.to_lowercase().replace_strict(
            addresses["address"], addresses["user"], default=None
        )

    lists = ("recipients", "cc", "bcc")
    empty = pl.lit([], pl.List(pl.String))
    # Most mail has one address: its person, if any, with no list work.
    only = user_of(pl.coalesce([pl.col(c).list.first() for c in lists]))
    # The person first, as a column of its own: used twice in one expression, it was looked up
    # twice, and the list built around it cost 0.25 s over a day of mail (0.01 s so).
    frame = frame.with_columns(sender_user=user_of(pl.col("sender")), _only=only)
    frame = frame.with_columns(
        recipient_users=pl.when(pl.col("_only").is_null())
        .then(empty)
        .otherwise(pl.concat_list("_only"))
    ).drop("_only")
    several = frame.select(pl.sum_horizontal([pl.col(c).list.len() for c in lists]) > 1)
    several = several.to_series()
    if several.any():
        # Mail to several addresses: each looked up inside the lists, in order, once a person.
        people = (
            frame.filter(several)
            .select(
                pl.concat_list(lists)
                .list.eval(user_of(pl.element()))
                .list.drop_nulls()
                .list.unique(maintain_order=True)
                .fill_null(empty)
            )
            .to_series()
        )
        at = (several.cast(pl.Int64).cum_sum() - 1).clip(lower_bound=0)
        frame = frame.with_columns(
            recipient_users=pl.when(several).then(people.gather(at)).otherwise("recipient_users")
        )
    outbound = pl.col("direction") == "outbound"
    frame = frame.with_columns(
        pl.when(outbound)
        .then(pl.col("sender_user"))
        .otherwise(pl.col("recipient_users").list.first())
        .alias("user")
    )
    frame = _with_reasons(
        frame,
        [
            (
                outbound & pl.col("sender").is_not_null() & pl.col("user").is_null(),
                pl.format("sender '{}' is not a roster address", _shown(pl.col("sender"))),
            ),
            (
                (pl.col("direction") == "inbound")
                & pl.col("user").is_null()
                & (pl.col("recipients").list.len() > 0),
                pl.lit("no recipient is a roster address"),
            ),
        ],
    )
    return frame.drop("sender_user")


def check_events(
    frame: pl.DataFrame, source: Source, roster: Roster, config: Config, as_of: date
) -> pl.DataFrame:
    """Typed rows with every row-level reason, ``local_date`` and ``raw`` attached."""
    tz = config.site.timezone
    checked = type_and_check(frame, source, tz)
    checks: list[Check] = []
    if source.name == "mail":
        checked = _tie_mail(checked, roster)
    else:
        checks.append(
            (
                pl.col("user").is_not_null() & ~pl.col("user").is_in(roster.users.implode()),
                pl.format("unknown user '{}' (not in the roster)", _shown(pl.col("user"))),
            )
        )
    stamps = pl.col("timestamp")
    span = span_of(checked["timestamp"])
    offset = fixed_offset(tz, *span) if span is not None else None
    event_day = wall_clock(stamps, tz, offset).dt.date()
    latest = as_of + timedelta(days=config.quality.future_tolerance_days)
    earliest = config.quality.earliest_day
    checks += [
        (
            pl.col("_event_day") < earliest,
            pl.format(
                "timestamp {} is before the earliest plausible day "
                + f"{earliest.isoformat()} (quality.earliest_day)",
                pl.col("_event_day").cast(pl.String),
            ),
        ),
        (
            pl.col("_event_day") > latest,
            pl.format(
                "timestamp {} is after the run's as-of day " + latest.isoformat(),
                pl.col("_event_day").cast(pl.String),
            ),
        ),
        (
            pl.col(FILE_DAY).is_not_null() & (pl.col("_event_day") != pl.col(FILE_DAY)),
            pl.format(
                "timestamp falls on {}, outside the file's day {}",
                pl.col("_event_day").cast(pl.String),
                pl.col(FILE_DAY).cast(pl.String),
            ),
        ),
    ]
    checked = _with_reasons(checked.with_columns(event_day.alias("_event_day")), checks)
    # A row dated outside the plausible days belongs to no day: it never makes a partition, so
    # it cannot widen the days a run detects over (its quarantine row is kept undated).
    plausible = pl.col("_event_day").is_between(earliest, latest)
    checked = checked.with_columns(
        pl.coalesce(FILE_DAY, pl.when(plausible).then("_event_day")).alias("local_date")
    )
    if REJECT in checked.columns:
        rejected = pl.col(REJECT).is_not_null()
        checked = checked.with_columns(
            pl.when(rejected)
            .then(pl.concat_list(REJECT))
            .otherwise(pl.col(REASONS))
            .alias(REASONS),
        )
    return checked.drop("_event_day")


def select_landing(
    folder: Path, logs: Path, start: date | None, end: date | None
) -> tuple[list[Path], list[str]]:
    """A source folder's landing files within the window, and a notice for every entry that
    is not read (hidden, not a landing format, a linked folder), naming it and why.

    Suffixes match in any case. Symbolic links to files are chosen and checked when read
    (:func:`inside_landing`); links to folders are not followed.
    """
    chosen: list[Path] = []
    notices: list[str] = []
    formats = ", ".join(SUFFIXES)
    for top, dirs, names in os.walk(folder, followlinks=False):
        here = Path(top)
        for name in sorted(dirs):
            rel = (here / name).relative_to(logs).as_posix()
            if (here / name).is_symlink():
                notices.append(f"{rel}: not read: a symbolic link to a folder is not followed")
            elif name.startswith("."):
                notices.append(f"{rel}: not read: hidden folder")
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not (here / d).is_symlink())
        for name in sorted(names):
            path = here / name
            rel = path.relative_to(logs).as_posix()
            if name.startswith("."):
                notices.append(f"{rel}: not read: hidden file")
                continue
            if landing_suffix(name) is None:
                notices.append(f"{rel}: not read: not a landing format ({formats})")
                continue
            day = file_day(path)
            if day is not None and ((start and day < start) or (end and day > end)):
                continue
            chosen.append(path)
    return sorted(chosen), notices


def _in_window(expr: pl.Expr, start: date | None, end: date | None) -> pl.Expr:
    cond = pl.lit(True)
    if start is not None:
        cond = cond & (expr >= start)
    if end is not None:
        cond = cond & (expr <= end)
    return cond


@dataclass
class SourceResult:
    source: str
    counts: list[DayCount]
    errors: list[FileError]
    warnings: list[str]
    outside_window: int


# Receives each finished day of a source: (day, stored rows, quarantine rows). None = no day.
DaySink = Callable[[date | None, pl.DataFrame | None, pl.DataFrame], None]


class _Reader:
    """Reads one source's landing files into checked rows, remembering errors and warnings."""

    def __init__(
        self,
        source: Source,
        logs: Path,
        on_file: Callable[[Path], None] | None,
        limits: LimitsConfig,
    ):
        self.source = source
        self.logs = logs
        self.limits = limits
        self.on_file = on_file
        self.errors: list[FileError] = []
        self.warnings: list[str] = []
        self.files_per_day: dict[date | None, int] = {}

    def read(self, paths: list[Path], day: date | None) -> tuple[pl.DataFrame, pl.DataFrame] | None:
        """Raw rows and structural rejects of ``paths``; None when a file cannot be read."""
        batches: list[pl.DataFrame] = []
        rejects: list[pl.DataFrame] = []
        failed = False
        for path in paths:
            rel = path.relative_to(self.logs).as_posix()
            try:
                batch = read_landing_file(
                    inside_landing(path, self.logs, rel),
                    rel,
                    self.source.names,
                    self.source.required,
                    self.limits,
                )
            except FileError as exc:
                self.errors.append(exc)
                failed = True
            else:
                self.warnings.extend(batch.warnings)
                self.files_per_day[day] = self.files_per_day.get(day, 0) + 1
                batches.append(_with_origin(batch.frame, rel, day))
                rejects.append(_reject_rows(batch, self.source.name, day))
            if self.on_file:
                self.on_file(path)
        if failed:
            return None
        raw = pl.concat(batches, how="vertical") if batches else self.empty()
        reject_frame = pl.concat(rejects) if rejects else pl.DataFrame(schema=QUARANTINE_SCHEMA)
        return raw, reject_frame

    def empty(self) -> pl.DataFrame:
        return pl.DataFrame(
            schema={
                **{c: pl.String for c in self.source.names},
                LINE: pl.Int64,
                FILE: pl.String,
                FILE_DAY: pl.Date,
                REJECT: pl.String,
                REJECT_RAW: pl.String,
            }
        )


def _with_origin(frame: pl.DataFrame, rel: str, day: date | None) -> pl.DataFrame:
    """The file and line a row came from. Files staged by an adapter carry the vendor file's
    name and line (and any record the adapter could not split) in their own columns."""
    file = pl.coalesce(ORIGIN_FILE, pl.lit(rel)) if ORIGIN_FILE in frame.columns else pl.lit(rel)
    extra = [
        pl.col(c) if c in frame.columns else pl.lit(None, pl.String).alias(c)
        for c in (REJECT, REJECT_RAW)
    ]
    return frame.with_columns(file.alias(FILE), pl.lit(day, pl.Date).alias(FILE_DAY), *extra).drop(
        ORIGIN_FILE, strict=False
    )


def process_source(
    source: Source,
    files: Iterable[Path],
    logs: Path,
    roster: Roster,
    config: Config,
    as_of: date,
    gate: QualityGate | None,
    start: date | None = None,
    end: date | None = None,
    on_file: Callable[[Path], None] | None = None,
    sink: DaySink | None = None,
) -> SourceResult:
    """Read, check, gate and deduplicate one source's files, one day at a time.

    Each finished day goes to ``sink`` before the next is read, so memory holds one day of one
    source (plus the rows of files not named for a day, which may hold any day). Files named
    for a day are read only with that day; an undated file is read first and its rows join the
    days they fall on.
    """
    reader = _Reader(source, logs, on_file, config.limits)
    by_day: dict[date, list[Path]] = {}
    undated_files: list[Path] = []
    for path in files:
        day = file_day(path)
        if day is None:
            undated_files.append(path)
        else:
            by_day.setdefault(day, []).append(path)

    undated = reader.read(undated_files, None) if undated_files else None
    if undated_files and undated is None:
        # An undated file may hold any day: nothing of this source can be trusted this run.
        return SourceResult(source.name, [], reader.errors, reader.warnings, 0)
    outside = 0
    loose = pl.DataFrame()
    loose_rejects = pl.DataFrame(schema=QUARANTINE_SCHEMA)
    if undated is not None:
        checked = check_events(undated[0], source, roster, config, as_of)
        in_window = _in_window(pl.col("local_date"), start, end) | pl.col("local_date").is_null()
        outside = checked.filter(~in_window).height
        loose = checked.filter(in_window)
        loose_rejects = undated[1]
    loose_days = set(loose["local_date"].drop_nulls().to_list()) if loose.height else set()
    loose_days |= set(loose_rejects["local_date"].drop_nulls().to_list())

    counts: list[DayCount] = []
    for day in [*sorted(set(by_day) | loose_days), None]:
        if day is None:
            rows = loose.filter(pl.col("local_date").is_null()) if loose.height else loose
            rejects = loose_rejects.filter(pl.col("local_date").is_null())
            if rows.height == 0 and rejects.height == 0:
                continue
        else:
            read = reader.read(by_day.get(day, []), day)
            if read is None:
                continue  # the day's file is broken: the whole day waits for a fixed file
            rows = check_events(read[0], source, roster, config, as_of)
            rejects = read[1]
            if loose.height:
                rows = pl.concat(
                    [rows, loose.filter(pl.col("local_date") == day)], how="vertical_relaxed"
                )
            rejects = pl.concat([rejects, loose_rejects.filter(pl.col("local_date") == day)])
        count, stored, quarantine = _finish_day(source, day, rows, rejects, gate)
        count.files = reader.files_per_day.get(day, 0)
        counts.append(count)
        if sink is not None:
            sink(day, stored if day is not None else None, quarantine)
    return SourceResult(source.name, counts, reader.errors, reader.warnings, outside)


def _finish_day(
    source: Source,
    day: date | None,
    rows: pl.DataFrame,
    rejects: pl.DataFrame,
    gate: QualityGate | None,
) -> tuple[DayCount, pl.DataFrame, pl.DataFrame]:
    """Gate, deduplicate and count one day's checked rows."""
    count = DayCount(source.name, day, read=rows.height + rejects.height)
    result: GateResult | None = (
        gate.validate(source.name, rows) if (gate is not None and rows.height) else None
    )
    if result is not None and not result.success:
        rows = rows.with_columns(
            pl.col(REASONS).list.concat(pl.lit([f"quality gate {result.summary}"]))
        )
    count.gate = result.summary if result is not None else "no rows"
    passed = rows.select(pl.col(REASONS).list.len() == 0).to_series()
    bad = rows.filter(~passed)
    # Only the stored columns are carried on (filtering copies every column it keeps, and a
    # day's rows also hold their text as read, for quarantine).
    good = rows.rename({LINE: "source_line"}).select(list(store_schema(source))).filter(passed)
    clustered = cluster(good)
    stored = (
        clustered.filter(first_copies(clustered, [c.name for c in source.columns]))
        if source.dedup
        else clustered
    )
    count.duplicates = clustered.height - stored.height
    quarantine = pl.concat([_quarantine_rows(bad, source.name), rejects]).sort(
        "source_file", "source_line"
    )
    count.stored = stored.height
    count.quarantined = quarantine.height
    if not count.reconciles:  # pragma: no cover - a bug, never bad input
        raise AssertionError(f"counts do not reconcile for {source.name} {day}: {count}")
    return count, stored, quarantine


def first_copies(clustered: pl.DataFrame, subset: list[str]) -> pl.Series:
    """True for each row that is the first with its values in ``subset``, on rows in
    :func:`cluster` order: the rows ``unique(keep="first", maintain_order=True)`` keeps.

    Copies share their person and time (``subset`` holds the time, and the person or the
    addresses a mail's person is drawn from), so in cluster order they sit in one run of rows
    with the same two; only rows in such runs are compared value by value. Cluster order is
    stable, so the first copy there is the first in the landing file. A clean day costs two
    comparisons a row rather than a hash of every value (0.5 s over a day's sources).
    """
    same = pl.col("user").eq_missing(pl.col("user").shift(1)) & pl.col("timestamp").eq_missing(
        pl.col("timestamp").shift(1)
    )
    shared = clustered.select(same | same.shift(-1, fill_value=False)).to_series()
    if not shared.any():
        return pl.repeat(True, clustered.height, eager=True)
    rows = shared.arg_true()
    kept = (
        clustered[rows]
        .select(subset)
        .with_columns(rows.alias("_row"))
        .unique(subset=subset, keep="first", maintain_order=True)["_row"]
    )
    return ~shared | pl.int_range(clustered.height, eager=True, dtype=rows.dtype).is_in(
        kept.implode()
    )


def cluster(events: pl.DataFrame) -> pl.DataFrame:
    """Rows ordered by person, then time, stable: one person's events sit together in a file.

    Equal to ``sort(["user", "timestamp"], maintain_order=True)``, but sorted on one integer
    when it can hold both: the person's rank among the day's ids (null first) above the
    microseconds since the earliest event (null first). Sorting one integer column takes a
    third of the time of sorting text and time on a large day.
    """
    if events.height == 0:
        return events
    ids = events["user"].drop_nulls().unique().sort()
    person = pl.col("user").cast(pl.Enum(ids)).to_physical().cast(pl.UInt64) + 1
    micros = pl.col("timestamp").dt.epoch("us")
    span = events.select(micros.max() - micros.min()).item()
    time_bits = (span or 0).bit_length() + 1
    if (len(ids) + 1).bit_length() + time_bits > 64:
        return events.sort("user", "timestamp", maintain_order=True)
    since = (micros - micros.min() + 1).cast(pl.UInt64)
    key = events.select(person.fill_null(0) * (1 << time_bits) + since.fill_null(0)).to_series()
    return events.sort(key, maintain_order=True)


def discover(logs: Path) -> dict[str, Path]:
    """Source name -> its landing folder, for the event sources present under ``logs``."""
    return {name: logs / name for name in EVENT_SOURCES if (logs / name).is_dir()}


def ingest(
    logs: Path,
    store: EventStore | None,
    config: Config,
    as_of: date,
    start: date | None = None,
    end: date | None = None,
    gate: QualityGate | None = None,
    on_file: Callable[[Path], None] | None = None,
    on_plan: Callable[[int], None] | None = None,
    workers: int = 2,
    force_roster: bool = False,
) -> IngestReport:
    """Ingest ``logs`` into ``store``; with ``store=None`` check only and write nothing.

    Sources are ingested ``workers`` at a time, largest landing first, in threads: each writes
    only its own partitions, polars and the decompression run outside the GIL, and the report
    lists sources in their fixed order whichever finishes first. An empty or shrunk roster
    stops the ingest before anything is written (:func:`refuse_shrunk_roster`) unless
    ``force_roster``.
    """
    report = IngestReport()
    roster = load_roster(logs, config)
    if not force_roster:
        refuse_shrunk_roster(roster, store, config)
    report.warnings.extend(roster.warnings)
    roster_count = DayCount(
        "hr",
        None,
        files=1,
        read=roster.read,
        stored=roster.frame.height,
        quarantined=roster.quarantine.height,
        gate="row checks",
    )
    report.counts.append(roster_count)
    plan: dict[str, list[Path]] = {}
    for name, folder in discover(logs).items():
        if not folder.resolve().is_relative_to(logs.resolve()):
            report.errors.append(
                FileError(
                    name, None, "symbolic link to a folder out of the landing folder: refused"
                )
            )
            continue
        plan[name], notices = select_landing(folder, logs, start, end)
        report.warnings.extend(notices)
    if on_plan:
        on_plan(sum(len(f) for f in plan.values()))
    if store is not None:
        store.write_roster(roster.frame)
        store.write_partition("quarantine", "hr", None, roster.quarantine)

    def one(name: str) -> SourceResult:
        sink = _store_sink(store, name) if store is not None else None
        return process_source(
            SOURCES[name], plan[name], logs, roster, config, as_of, gate, start, end, on_file, sink
        )

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        running = {name: pool.submit(one, name) for name in _largest_first(plan)}
    for name in plan:
        result = running[name].result()
        report.counts.extend(result.counts)
        report.errors.extend(result.errors)
        report.warnings.extend(result.warnings)
        report.outside_window += result.outside_window
    return report


def _largest_first(plan: dict[str, list[Path]]) -> list[str]:
    # A dangling link has no size; it fails, naming itself, when its day is read.
    size = {
        name: sum(p.stat().st_size for p in files if p.exists()) for name, files in plan.items()
    }
    return sorted(plan, key=lambda name: (-size[name], name))


def _store_sink(store: EventStore, source: str) -> DaySink:
    def write(day: date | None, events: pl.DataFrame | None, quarantine: pl.DataFrame) -> None:
        if events is not None:
            store.write_partition("events", source, day, events)
        store.write_partition("quarantine", source, day, quarantine)

    return write
