"""The synthetic organisation: deterministic, in the landing contract, and realistic."""

from __future__ import annotations

import gzip
import hashlib
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from insiderwatch.config import config_for_logs
from insiderwatch.ingest import ingest
from insiderwatch.samples import SCENARIOS, VENDOR_ACCOUNT, generate
from insiderwatch.store import EventStore
from tests.conftest import SAMPLE_LOGS


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            h.update(path.relative_to(folder).as_posix().encode())
            h.update(path.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def small_org(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("org") / "logs"
    generate(60, 35, seed=11, out=out)
    return out


def test_same_seed_same_files_other_seed_other_files(small_org, tmp_path) -> None:
    again = tmp_path / "again"
    generate(60, 35, seed=11, out=again)
    assert _digest(again) == _digest(small_org)
    other = tmp_path / "other"
    generate(60, 35, seed=12, out=other)
    assert _digest(other) != _digest(small_org)


def test_generated_logs_meet_the_contract_with_nothing_quarantined(
    small_org, gate, tmp_path
) -> None:
    report = ingest(
        small_org,
        EventStore(tmp_path / "s"),
        config_for_logs(small_org),
        date(2026, 1, 1),
        gate=gate,
    )
    assert report.errors == []
    assert report.totals()["stored"] > 20_000
    # The only dirt is deliberate: a vendor account missing from the roster, proxy repeats.
    quarantine = EventStore(tmp_path / "s").scan("logon", area="quarantine").collect()
    assert quarantine.height == report.totals()["quarantined"] > 0
    assert set(quarantine["reason"]) == {f"unknown user '{VENDOR_ACCOUNT}' (not in the roster)"}
    assert report.totals()["duplicates"] > 0
    assert all(c.gate.startswith("passed") for c in report.counts if c.source != "hr")


def test_labels_name_every_scenario_for_people_on_the_roster(small_org) -> None:
    labels = pl.read_csv(small_org / "labels.csv")
    roster = pl.read_csv(small_org / "hr" / "employees.csv", infer_schema=False)
    assert set(labels["scenario"]) == set(SCENARIOS)
    assert labels["user"].is_in(roster["user"].implode()).all()
    leavers = roster.filter(pl.col("notice_date").is_not_null())
    assert leavers.height >= 3  # the malicious leaver plus benign ones
    thief = labels.filter(pl.col("scenario") == "leaver_theft")["user"][0]
    assert thief in leavers["user"].to_list()


def _events(logs: Path, source: str) -> pl.DataFrame:
    frames = [
        pl.read_csv(gzip.decompress(p.read_bytes()), infer_schema=False)
        for p in sorted((logs / source).glob("*.csv.gz"))
    ]
    return pl.concat(frames).with_columns(pl.col("timestamp").str.to_datetime("%Y-%m-%d %H:%M:%S"))


def test_the_committed_sample_is_big_enough_and_small_enough() -> None:
    roster = pl.read_csv(SAMPLE_LOGS / "hr" / "employees.csv", infer_schema=False)
    assert roster.height >= 150
    days = sorted(p.name for p in (SAMPLE_LOGS / "logon").glob("*.csv.gz"))
    assert len(days) >= 90
    size = sum(p.stat().st_size for p in SAMPLE_LOGS.rglob("*") if p.is_file())
    assert size < 25 * 1024 * 1024


def test_sample_shows_holidays_night_shifts_and_mixed_languages() -> None:
    logon = _events(SAMPLE_LOGS, "logon").filter(pl.col("activity") == "logon")
    per_day = logon.group_by(pl.col("timestamp").dt.date().alias("day")).len()
    golden_week = per_day.filter(pl.col("day") == date(2024, 5, 3))["len"].sum()  # 憲法記念日
    ordinary = per_day.filter(pl.col("day") == date(2024, 5, 7))["len"].sum()
    assert golden_week < ordinary / 5
    night = logon.filter(pl.col("timestamp").dt.hour() >= 21)
    assert night["user"].n_unique() >= 5  # night-shift operators
    remote = logon.filter(pl.col("remote") == "true")
    assert remote["user"].n_unique() >= 5  # travellers
    roster = pl.read_csv(SAMPLE_LOGS / "hr" / "employees.csv", infer_schema=False)
    assert roster["name"].str.contains(r"^[A-Za-z ]+$").any()
    assert roster["name"].str.contains(r"[\p{Han}]").any()
    mail = _events(SAMPLE_LOGS, "mail")
    subjects = mail["subject"].drop_nulls()
    assert subjects.str.contains(r"[\p{Hiragana}\p{Katakana}\p{Han}]").any()
    assert subjects.str.contains(r"^[A-Za-z :]+$").any()
