"""The Great Expectations suites: committed, in step with the schema, passing on the sample logs
and failing on a broken copy of them."""

from __future__ import annotations

import gzip
import shutil
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from insiderwatch.config import config_for_logs
from insiderwatch.ingest import discover, load_roster, process_source
from insiderwatch.quality import SUITE_DIR, build_suites
from schemas.canonical import EVENT_SOURCES, SOURCES
from tests.conftest import SAMPLE_LOGS

AS_OF = date(2026, 1, 1)


def test_committed_suites_match_the_canonical_schema() -> None:
    expected = build_suites()
    committed = {p.name: p.read_text(encoding="utf-8") for p in SUITE_DIR.glob("*.json")}
    assert committed == expected, "run `insiderwatch schemas write-suites` and commit the result"


def test_schema_docs_are_generated_from_the_schema() -> None:
    from schemas.docs import DOC_PATH, schema_markdown

    assert DOC_PATH.read_text(encoding="utf-8") == schema_markdown(), (
        "run `insiderwatch schemas write-docs` and commit the result"
    )


def _gate_days(logs: Path, source: str, gate, files=None):
    config = config_for_logs(logs)
    roster = load_roster(logs, config)
    chosen = files if files is not None else sorted(discover(logs)[source].glob("*.csv.gz"))
    return process_source(SOURCES[source], chosen, logs, roster, config, AS_OF, gate).counts


@pytest.mark.parametrize("source", EVENT_SOURCES)
def test_each_suite_passes_on_every_sample_day(source: str, ingested_sample: Path) -> None:
    """The session's ingest of the whole sample ran every source-day through the gate and
    recorded its verdict; read them back rather than gating all 540 source-days again."""
    from insiderwatch.db import Database, default_url

    database = Database(default_url(ingested_sample))
    rows = database.query(
        "SELECT day, gate, rows_read, stored FROM ingest_counts WHERE source = ? ORDER BY day",
        [source],
    )
    database.close()
    counts = pl.DataFrame(
        rows, schema=["day", "gate", "rows_read", "stored"], orient="row", infer_schema_length=None
    )
    days = sorted((SAMPLE_LOGS / source).glob("*.csv.gz"))
    assert counts.height == len(days) > 0, f"not every sample day of {source} was gated"
    failed = counts.filter(~pl.col("gate").str.starts_with("passed"))
    assert failed.rows() == []
    assert counts["stored"].sum() > 0.99 * counts["rows_read"].sum()


BREAKAGE = {
    # source: (column, broken value) — a vendor change that shifts or renames values
    "logon": ("activity", "LOGIN_SUCCESS"),
    "file_access": ("action", "FileAccessed"),
    "print": ("pages", "-1"),
    "mail": ("direction", "sent"),
    "web": ("action", "GET"),
    "device": ("activity", "plugged"),
}


@pytest.mark.parametrize("source", EVENT_SOURCES)
def test_each_suite_fails_on_a_broken_copy(source: str, gate, tmp_path) -> None:
    logs = tmp_path / "broken"
    (logs / "hr").mkdir(parents=True)
    shutil.copy(SAMPLE_LOGS / "hr" / "employees.csv", logs / "hr" / "employees.csv")
    original = sorted((SAMPLE_LOGS / source).glob("*.csv.gz"))[5]
    frame = pl.read_csv(gzip.decompress(original.read_bytes()), infer_schema=False)
    column, value = BREAKAGE[source]
    # Break one row in five: far past what the suites tolerate.
    broken = frame.with_columns(
        pl.when(pl.int_range(pl.len()) % 5 == 0)
        .then(pl.lit(value))
        .otherwise(pl.col(column))
        .alias(column)
    )
    (logs / source).mkdir()
    target = logs / source / original.name.removesuffix(".gz")
    broken.write_csv(target)
    counts = _gate_days(logs, source, gate, [target])
    assert len(counts) == 1
    assert counts[0].gate.startswith("failed: ")
    assert column in counts[0].gate
    assert counts[0].stored == 0 and counts[0].quarantined == frame.height


def test_the_small_hand_off_keeps_what_each_expectation_sees(gate) -> None:
    """Nulls in a text column, values outside a set and numbers below a minimum still fail the
    gate with the share of rows, though GX sees flags, categories and numbers."""
    n = 200
    frame = pl.DataFrame(
        {
            "timestamp": [None] * 20 + ["2024-04-01T00:00:00+00:00"] * (n - 20),
            "user": ["u1"] * (n - 30) + [None] * 30,
            "host": ["PC-1"] * n,
            "action": ["read"] * (n - 40) + ["FileAccessed"] * 40,
            "path": ["\\\\fs\\a.txt"] * n,
            "bytes": [10] * (n - 50) + [-1] * 50,
            "destination": ["share"] * n,
            "system": [None] * n,
            "classification": [None] * n,
        }
    )
    result = gate.validate("file_access", frame)
    assert not result.success
    failures = "; ".join(result.failures)
    assert "expect_column_values_to_not_be_null on timestamp (10.0% of rows)" in failures
    assert "expect_column_values_to_not_be_null on user (15.0% of rows)" in failures
    assert "expect_column_values_to_be_in_set on action (20.0% of rows)" in failures
    assert "expect_column_values_to_be_between on bytes (25.0% of rows)" in failures
    assert "host" not in failures and "path" not in failures
    clean = frame.with_columns(
        pl.lit("2024-04-01T00:00:00+00:00").alias("timestamp"),
        pl.lit("u1").alias("user"),
        pl.lit("read").alias("action"),
        pl.lit(10).alias("bytes"),
    )
    assert gate.validate("file_access", clean).success
