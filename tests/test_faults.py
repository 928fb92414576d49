"""Hostile and broken input: each case pins the exact outcome, that nothing is written outside
the store, and that rows read = stored + quarantined + duplicates."""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from insiderwatch.readers import FileError, iter_csv_blocks
from tests.conftest import (
    LOGON_HEADER,
    REPO,
    ROSTER,
    SAMPLE_LOGS,
    assert_reconciles,
    csv_text,
    logon_rows,
    stored,
)

DAY = date(2024, 4, 1)
GOOD = 40
LOGON = "logon/2024-04-01.csv"
BAD_LINE = GOOD + 2


def logon_file(extra: list[str]) -> str:
    return csv_text(LOGON_HEADER, [*logon_rows(GOOD), *extra])


# --- timestamps outside the plausible days ---------------------------------------------------


@pytest.mark.parametrize(
    ("stamp", "reason"),
    [
        ("0000-01-01 09:00:00", "before the earliest plausible day 2000-01-01"),
        ("0001-01-01 09:00:00", "before the earliest plausible day 2000-01-01"),
        ("1970-01-01 09:00:00", "before the earliest plausible day 2000-01-01"),
        ("9999-12-31 23:00:00", "after the run's as-of day 2024-04-30"),
    ],
)
def test_a_timestamp_outside_the_plausible_days_is_quarantined(
    stamp: str, reason: str, landing, run_ingest
) -> None:
    report, store = run_ingest(landing({LOGON: logon_file([f"{stamp},u1,PC-1,logon,false"])}))
    assert_reconciles(report, store)
    assert report.errors == []
    count = report.count("logon", DAY)
    assert (count.read, count.stored, count.quarantined) == (GOOD + 1, GOOD, 1)
    quarantine = stored(store, "logon", area="quarantine")
    assert quarantine["source_line"].to_list() == [BAD_LINE]
    assert reason in quarantine["reason"][0]


def test_an_implausible_row_in_an_undated_file_makes_no_day(landing, run_ingest) -> None:
    """A 1970 row in a file not named for a day used to become a day of its own, and detection
    then ran over every day from 1970 to today."""
    rows = [*logon_rows(GOOD), "1970-01-01 09:00:00,u1,PC-1,logon,false"]
    report, store = run_ingest(landing({"logon/export.csv": csv_text(LOGON_HEADER, rows)}))
    assert_reconciles(report, store)
    days = sorted(c.day for c in report.counts if c.source == "logon" and c.day is not None)
    assert days == [DAY]
    undated = report.count("logon", None)
    assert (undated.read, undated.stored, undated.quarantined) == (1, 0, 1)
    assert not any(p.name == "date=1970-01-01" for p in store.root.rglob("date=*"))


# --- decompression, file and line bounds -----------------------------------------------------


def _site_file(folder: Path, limits: str) -> None:
    (folder / "insiderwatch.toml").write_text(f"[limits]\n{limits}\n", encoding="utf-8")


def _write_gzip_of_nul(path: Path, megabytes: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    block = b"\x00" * (1 << 20)
    with gzip.open(path, "wb", compresslevel=9) as fh:
        for _ in range(megabytes):
            fh.write(block)


_PEAK = """
import sys
from datetime import date
from pathlib import Path
from insiderwatch.config import config_for_logs
from insiderwatch.ingest import ingest
from insiderwatch.store import EventStore
logs = Path(sys.argv[1])
report = ingest(logs, EventStore(sys.argv[2]), config_for_logs(logs), as_of=date(2024, 4, 30))
print("\\n".join(str(e) for e in report.errors))
# The kernel's high-water mark of this program (getrusage's ru_maxrss would carry over the
# forking test process's size across exec).
hwm = next(l for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print("PEAK", int(hwm.split()[1]) // 1024)
"""


def _ingest_in_a_process(logs: Path, store: Path) -> tuple[list[str], int]:
    """Errors and peak resident memory (MB) of an ingest in a fresh process."""
    done = subprocess.run(
        [sys.executable, "-c", _PEAK, str(logs), str(store)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
        check=True,
    )
    lines = done.stdout.strip().splitlines()
    return lines[:-1], int(lines[-1].split()[1])


def test_a_gzip_bomb_is_refused_under_a_memory_ceiling(landing, tmp_path: Path) -> None:
    """One gigabyte of NUL bytes, one megabyte packed: it took the ingest to 5 GB and more."""
    logs = landing({})
    _write_gzip_of_nul(logs / "logon" / "2024-04-01.csv.gz", 1024)
    assert (logs / "logon" / "2024-04-01.csv.gz").stat().st_size < 2 << 20
    errors, peak = _ingest_in_a_process(logs, tmp_path / "store")
    assert errors == [
        "logon/2024-04-01.csv.gz: gzip data inflates more than 500 times over "
        "(limits.max_gzip_ratio): refused as a decompression bomb"
    ]
    # Seen from its first 64 KB: what the ingest needs anyway (150-200 MB), and little more.
    assert peak < 300, f"peak {peak} MB"


def test_a_bomb_behind_a_benign_start_is_bounded_by_the_ratio_over_the_file(
    landing, tmp_path: Path
) -> None:
    """A gzip file that starts as an honest log and then inflates zeros: its first bytes look
    fine, and the whole file may inflate no more than 500 times its size."""
    logs = landing({})
    path = logs / "logon" / "2024-04-01.csv.gz"
    path.parent.mkdir()
    honest = csv_text(LOGON_HEADER, logon_rows(GOOD) * 2000).encode()
    path.write_bytes(gzip.compress(honest))
    with gzip.open(path, "ab", compresslevel=9) as fh:  # a second member, appended
        for _ in range(400):
            fh.write(b"\x00" * (1 << 20))
    size = path.stat().st_size
    errors, peak = _ingest_in_a_process(logs, tmp_path / "store")
    assert errors == [
        "logon/2024-04-01.csv.gz: gzip data inflates more than 500 times over "
        "(limits.max_gzip_ratio): refused as a decompression bomb"
    ]
    assert peak < 250 + 2 * 500 * size / 1e6, f"peak {peak} MB for {size:,} bytes packed"


def test_a_gzip_file_that_inflates_past_the_file_limit_is_refused(landing, run_ingest) -> None:
    logs = landing({LOGON + ".gz": gzip.compress(logon_file([]).encode())})
    _site_file(logs, "max_file_bytes = 1024")
    report, store = run_ingest(logs, config_file=logs / "insiderwatch.toml")
    assert [str(e) for e in report.errors] == [
        "logon/2024-04-01.csv.gz: gzip data inflates past 1,024 bytes, the limit for one file "
        "(limits.max_file_bytes)"
    ]
    assert not store.partition("events", "logon", DAY).exists()


def test_a_file_over_the_file_limit_is_refused_unread(landing, run_ingest) -> None:
    text = logon_file([])
    logs = landing({LOGON: text})
    _site_file(logs, "max_file_bytes = 1024")
    report, _ = run_ingest(logs, config_file=logs / "insiderwatch.toml")
    assert [str(e) for e in report.errors] == [
        f"logon/2024-04-01.csv: file is {len(text):,} bytes, over the limit of 1,024 for one "
        "file (limits.max_file_bytes)"
    ]


def test_a_header_with_no_line_break_in_sight_fails_its_file(landing, run_ingest) -> None:
    logs = landing({LOGON: "timestamp,user," + "x" * 5000})
    _site_file(logs, "max_line_bytes = 4096")
    report, _ = run_ingest(logs, config_file=logs / "insiderwatch.toml")
    assert [str(e) for e in report.errors] == [
        "logon/2024-04-01.csv:1: line longer than 4,096 bytes (limits.max_line_bytes)"
    ]


def test_a_stream_without_line_breaks_fails_rather_than_grow(tmp_path: Path) -> None:
    from insiderwatch.config import LimitsConfig

    path = tmp_path / "http.csv.gz"
    with gzip.open(path, "wb") as fh:
        fh.write(b"id,date,user,pc,url\n")
        fh.write(b"x" * (64 << 10))
    limits = LimitsConfig(max_file_bytes=1 << 30, max_gzip_ratio=100_000, max_line_bytes=16 << 10)
    with pytest.raises(FileError, match=r"http.csv.gz:2: line longer than 16,384 bytes"):
        list(iter_csv_blocks(path, "http.csv.gz", 4096, limits))


def test_an_over_long_field_beside_a_short_row_quarantines_both(landing, run_ingest) -> None:
    """Python's csv module stops at 131,072 characters a field: the whole day was held back."""
    long_row = f"2024-04-01 18:00:00,u1,{'h' * 200_000},logon,false"
    short_row = "2024-04-01 18:05:00,u1,logon,false"
    report, store = run_ingest(landing({LOGON: logon_file([long_row, short_row])}))
    assert_reconciles(report, store)
    assert report.errors == []
    quarantine = stored(store, "logon", area="quarantine").sort("source_line")
    assert quarantine.select("source_line", "reason").rows() == [
        (BAD_LINE, "host longer than 255 characters"),
        (BAD_LINE + 1, "expected 5 fields, found 4"),
    ]
    assert report.count("logon", DAY).stored == GOOD


# --- the roster ------------------------------------------------------------------------------


@pytest.mark.parametrize("user", ["/x/pwn", "../../../escape/pwn", "a b", "", "-rf"])
def test_a_roster_id_that_is_not_a_plain_id_is_quarantined(user: str, landing, run_ingest) -> None:
    line = f"{user},Mallory,m@corp.example,営業部,sales,u3,2020-04-01,2024-04-10,,false,\n"
    report, store = run_ingest(landing({LOGON: logon_file([])}, roster=ROSTER + line))
    hr = report.count("hr", None)
    assert (hr.read, hr.stored, hr.quarantined) == (4, 3, 1)
    reason = stored(store, "hr", area="quarantine")["reason"][0]
    assert reason == ("missing user" if not user else f"user id '{user}' is not a plain id "
                      "(quality.user_id_pattern)")  # fmt: skip
    assert sorted(pl.read_parquet(store.roster_path())["user"]) == ["u1", "u2", "u3"]


def test_a_supervisor_id_that_is_not_a_plain_id_is_quarantined(landing, run_ingest) -> None:
    line = "u4,Four,four@corp.example,営業部,sales,../u3,2020-04-01,,,false,\n"
    report, store = run_ingest(landing({LOGON: logon_file([])}, roster=ROSTER + line))
    assert report.count("hr", None).quarantined == 1
    assert stored(store, "hr", area="quarantine")["reason"].to_list() == [
        "supervisor id '../u3' is not a plain id (quality.user_id_pattern)"
    ]


HEADER_ONLY = ROSTER.splitlines()[0] + "\n"


def test_a_header_only_roster_does_not_wipe_the_stored_days(landing, run_ingest) -> None:
    logs = landing({LOGON: logon_file([])})
    first, store = run_ingest(logs)
    assert first.count("logon", DAY).stored == GOOD
    events_before = store.partition("events", "logon", DAY).read_bytes()
    with pytest.raises(FileError, match=r"the roster holds nobody .* --force-roster"):
        run_ingest(landing({LOGON: logon_file([])}, roster=HEADER_ONLY))
    assert store.partition("events", "logon", DAY).read_bytes() == events_before
    assert pl.read_parquet(store.roster_path()).height == 3


def test_a_roster_shrunk_past_the_share_is_refused_unless_forced(landing, run_ingest) -> None:
    logs = landing({LOGON: logon_file([])})
    run_ingest(logs)
    only_one = "\n".join(ROSTER.splitlines()[:2]) + "\n"
    with pytest.raises(FileError, match="holds 1 people, fewer than 50% of the 3 in the store"):
        run_ingest(landing({LOGON: logon_file([])}, roster=only_one))
    report, store = run_ingest(landing({LOGON: logon_file([])}, roster=only_one), force_roster=True)
    assert pl.read_parquet(store.roster_path())["user"].to_list() == ["u1"]
    count = report.count("logon", DAY)
    assert (count.stored, count.quarantined) == (14, 26)  # u1's rows stay; u2's and u3's go


def test_the_cli_refuses_a_header_only_roster_in_one_line(tmp_path: Path, landing) -> None:
    from typer.testing import CliRunner

    from insiderwatch.cli import app

    store = tmp_path / "store"
    args = ["ingest", "--store", str(store), "--as-of", "2024-04-30"]
    first = CliRunner().invoke(app, [*args, "--logs", str(landing({LOGON: logon_file([])}))])
    assert first.exit_code == 0, first.output
    emptied = landing({LOGON: logon_file([])}, roster=HEADER_ONLY)
    done = CliRunner().invoke(app, [*args, "--logs", str(emptied)])
    assert done.exit_code == 2  # bad input that stopped the run before it began
    assert "hr/employees.csv: the roster holds nobody" in " ".join(done.output.split())
    assert "Traceback" not in done.output


# --- what the landing folder holds -----------------------------------------------------------


def test_a_symlink_out_of_the_landing_folder_is_refused_and_not_copied(
    tmp_path: Path, landing, run_ingest
) -> None:
    secret = tmp_path / "outside" / "shadow"
    secret.parent.mkdir()
    secret.write_text(csv_text(LOGON_HEADER, ["root:SECRET-HASH:19000:0:99999:7:::"]))
    os.chmod(secret, 0o600)
    logs = landing({"logon/2024-04-02.csv": logon_file([]).replace("2024-04-01", "2024-04-02")})
    (logs / "logon" / "2024-04-01.csv").symlink_to(secret)
    report, store = run_ingest(logs)
    assert [str(e) for e in report.errors] == [
        "logon/2024-04-01.csv: symbolic link out of the landing folder: refused"
    ]
    assert not store.partition("events", "logon", DAY).exists()
    assert report.count("logon", date(2024, 4, 2)).stored == GOOD
    written = b"".join(p.read_bytes() for p in store.root.rglob("*.parquet"))
    assert b"SECRET-HASH" not in written


def test_a_source_folder_linked_out_of_the_landing_folder_is_refused(
    tmp_path: Path, landing, run_ingest
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "2024-04-01.csv").write_text(logon_file([]), encoding="utf-8")
    logs = landing({})
    (logs / "logon").symlink_to(elsewhere, target_is_directory=True)
    report, store = run_ingest(logs)
    assert [str(e) for e in report.errors] == [
        "logon: symbolic link to a folder out of the landing folder: refused"
    ]
    assert not (store.root / "events").exists()


def test_a_dangling_symlink_is_an_error_naming_it(landing, run_ingest) -> None:
    logs = landing({})
    (logs / "logon").mkdir()
    (logs / "logon" / "2024-04-01.csv").symlink_to(logs / "logon" / "gone.csv")
    report, _ = run_ingest(logs)
    assert [str(e) for e in report.errors] == [
        "logon/2024-04-01.csv: symbolic link to a file that does not exist"
    ]


def test_a_symlink_inside_the_landing_folder_is_read(landing, run_ingest) -> None:
    logs = landing({"archive/day1.csv": logon_file([])})
    (logs / "logon").mkdir()
    (logs / "logon" / "2024-04-01.csv").symlink_to(logs / "archive" / "day1.csv")
    report, store = run_ingest(logs)
    assert report.errors == []
    assert report.count("logon", DAY).stored == GOOD
    assert_reconciles(report, store)


def test_every_file_the_reader_does_not_take_is_named_with_why(
    tmp_path: Path, landing, run_ingest
) -> None:
    upper = logon_file([]).replace("2024-04-01", "2024-04-02")
    logs = landing(
        {
            "logon/2024-04-01.CSV": logon_file([]),
            "logon/2024-04-02.csv.GZ": gzip.compress(upper.encode()),
            "logon/2024-04-03.json": "{}",
            "logon/README.txt": "notes",
            "logon/.2024-04-04.csv": logon_file([]),
        }
    )
    elsewhere = tmp_path / "linked"
    elsewhere.mkdir()
    (logs / "logon" / "more").symlink_to(elsewhere, target_is_directory=True)
    report, store = run_ingest(logs)
    assert report.errors == []
    assert sorted(c.day for c in report.counts if c.source == "logon") == [DAY, date(2024, 4, 2)]
    assert_reconciles(report, store)
    formats = ".csv.gz, .csv, .jsonl, .parquet"
    notices = [w for w in report.warnings if "not read" in w]
    assert notices == [
        "logon/more: not read: a symbolic link to a folder is not followed",
        "logon/.2024-04-04.csv: not read: hidden file",
        f"logon/2024-04-03.json: not read: not a landing format ({formats})",
        f"logon/README.txt: not read: not a landing format ({formats})",
    ]


def test_an_unreadable_file_is_an_error_naming_it(landing, run_ingest) -> None:
    if os.geteuid() == 0:
        # root reads any file; a file that vanishes between listing and reading stands in.
        logs = landing({LOGON: logon_file([])})
        from insiderwatch.ingest import _Reader
        from insiderwatch.readers import default_limits
        from schemas.canonical import SOURCES

        reader = _Reader(SOURCES["logon"], logs, None, default_limits())
        (logs / LOGON).unlink()
        assert reader.read([logs / LOGON], DAY) is None
        assert [str(e) for e in reader.errors] == [
            "logon/2024-04-01.csv: cannot read the file (No such file or directory)"
        ]
        return
    logs = landing({LOGON: logon_file([])})
    os.chmod(logs / LOGON, 0)
    report, _ = run_ingest(logs)
    assert [str(e) for e in report.errors] == [
        "logon/2024-04-01.csv: cannot read the file (Permission denied)"
    ]


def test_the_packaged_limits_are_read_from_the_defaults(tmp_path: Path) -> None:
    from insiderwatch.config import ConfigError, load_config
    from insiderwatch.readers import default_limits

    assert default_limits() == load_config().limits
    site = tmp_path / "site.toml"
    site.write_text("[limits]\nmax_gzip_ratio = 'many'\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"limits\.max_gzip_ratio"):
        load_config(site)
    site.write_text("[quality]\nuser_id_pattern = '[a-z]+'\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"quality\.user_id_pattern: .*start with \^"):
        load_config(site)


# --- paths built from data -------------------------------------------------------------------


@given(st.text(max_size=12), st.text(max_size=12))
def test_file_names_of_ids_are_plain_and_never_shared(a: str, b: str) -> None:
    from insiderwatch.store import file_name_of

    assert re.fullmatch(r"[A-Za-z0-9_-]+", file_name_of(a))
    assert (file_name_of(a) == file_name_of(b)) == (a == b)


@pytest.mark.parametrize("name", ["../escape", "/x/pwn", "a/b", "..", ".", "", "a\x00b", "a\\b"])
def test_a_path_from_data_never_leaves_its_root(name: str, tmp_path: Path) -> None:
    from insiderwatch.store import UnsafePath, safe_child

    with pytest.raises(UnsafePath):
        safe_child(tmp_path / "root", "lookbacks", name)


def test_a_symlink_in_the_store_cannot_carry_a_path_out(tmp_path: Path) -> None:
    from insiderwatch.store import UnsafePath, safe_child

    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "lookbacks").symlink_to(tmp_path, target_is_directory=True)
    with pytest.raises(UnsafePath, match="resolves outside"):
        safe_child(tmp_path / "root", "lookbacks", "u1_2024-05-27")


def test_a_user_id_that_is_a_path_stays_inside_the_store(
    reported_store: Path, tmp_path: Path
) -> None:
    """The automatic lookback built its request without the CLI's checks: a roster user
    ``../../../escape/pwn`` with a notice date wrote five files outside the store. Ingest now
    quarantines such an id; behind that, the folder name is an encoding of the id, so even a
    roster written by other means keeps every file under ``lookbacks/``."""
    from insiderwatch.config import config_for_logs
    from insiderwatch.leavers import write_lookback
    from insiderwatch.lookback import LookbackRequest
    from insiderwatch.store import EventStore

    copy = tmp_path / "store"
    shutil.copytree(reported_store, copy)
    store = EventStore(copy)
    roster = pl.read_parquet(store.roster_path())
    victim = roster.row(0, named=True)["user"]
    hostile = ["../../../escape/pwn", str(tmp_path / "x" / "pwn")]
    renamed = roster.with_columns(
        pl.col("user").replace({victim: hostile[0], roster["user"][1]: hostile[1]})
    )
    store.write_roster(renamed)
    outside = {p for p in tmp_path.rglob("*") if not p.is_relative_to(copy)}
    for user in hostile:
        folder, _ = write_lookback(
            store, LookbackRequest(user, date(2024, 6, 3)), config_for_logs(SAMPLE_LOGS)
        )
        assert folder.parent == copy / "lookbacks"
        assert sorted(p.name for p in folder.iterdir()) == [
            "comparison.csv", "report.html", "verdict.txt", "weekly.csv", "weekly.parquet"
        ]  # fmt: skip
    assert {p for p in tmp_path.rglob("*") if not p.is_relative_to(copy)} == outside
    assert not list((copy / "lookbacks").glob(".*"))  # no staging folder left behind


def test_each_supervisor_gets_a_file_of_their_own(reported_store: Path, tmp_path: Path) -> None:
    """``u.00008`` and ``u_00008`` shared ``supervisors/u_00008.html``: one supervisor was
    shown, and mailed, the other's team, and one team's alerts were lost."""
    from insiderwatch.alerts import list_alerts
    from insiderwatch.config import config_for_logs
    from insiderwatch.db import Database, default_url
    from insiderwatch.reports import teams, write_daily_reports
    from insiderwatch.store import EventStore

    copy = tmp_path / "store"
    shutil.copytree(reported_store, copy)
    store = EventStore(copy)
    db = Database(default_url(copy))
    try:
        alerts = list_alerts(db).filter(pl.col("supervisor").is_not_null())
        day = alerts["alert_date"].mode().sort()[0]
        bosses = alerts.filter(pl.col("alert_date") == day)["supervisor"].unique().sort()
        roster = pl.read_parquet(store.roster_path())
        if bosses.len() < 2:  # give a second, unflagged supervisor the colliding name
            others = roster["supervisor"].drop_nulls().unique().sort()
            bosses = pl.concat([bosses, others.filter(~others.is_in(bosses.implode())).head(1)])
        renamed = {bosses[0]: "u.00008", bosses[1]: "u_00008"}
        roster = roster.with_columns(
            pl.col("user").replace(renamed), pl.col("supervisor").replace(renamed)
        )
        store.write_roster(roster)
        config = config_for_logs(SAMPLE_LOGS)
        written = write_daily_reports(store, db, day, config, out=tmp_path / "reports")
        team_of = teams(roster, config.report.supervisor_scope, day)
        files = [r.html for r in written.supervisors]
        assert len(set(files)) == len(files) == len(team_of)
        day_alerts = list_alerts(db, day, day)
        for report in written.supervisors:
            page = report.html.read_text(encoding="utf-8")
            people = set(team_of[report.supervisor])
            for alert in day_alerts.iter_rows(named=True):
                assert (alert["alert_id"] in page) == (alert["user_id"] in people)
        assert {r.supervisor for r in written.supervisors} >= {"u.00008", "u_00008"}
    finally:
        db.close()


# --- state kept across runs ------------------------------------------------------------------


def test_rerunning_an_earlier_day_never_rewinds_the_leavers_list(
    reported_store: Path, tmp_path: Path
) -> None:
    """Rerunning a past day replaced the list with that day's (3 people -> 1), and the
    malicious leaver disappeared from the next report."""
    from insiderwatch.config import config_for_logs
    from insiderwatch.db import Database, default_url
    from insiderwatch.leavers import list_leavers, sync_leavers
    from insiderwatch.store import EventStore

    copy = tmp_path / "store"
    shutil.copytree(reported_store, copy)
    db = Database(default_url(copy))
    config = config_for_logs(SAMPLE_LOGS)
    try:
        sync_leavers(EventStore(copy), db, config, date(2024, 6, 21))
        latest = list_leavers(db)
        assert latest["user_id"].sort().to_list() == ["u00098", "u00101", "u00107"]
        sync_leavers(EventStore(copy), db, config, date(2024, 5, 15))
        assert list_leavers(db).equals(latest)
        assert db.query("SELECT DISTINCT as_of FROM leavers") == [(date(2024, 6, 21),)]
        # A report of the earlier day shows the list as it stood then.
        assert list_leavers(db, date(2024, 5, 15))["user_id"].to_list() == ["u00107"]
    finally:
        db.close()


# --- numbers ---------------------------------------------------------------------------------


def test_sizes_past_the_plausible_maximum_are_quarantined_before_they_are_summed(
    landing, run_ingest
) -> None:
    """Two removable copies of 2**63 - 1 bytes made ``removable_bytes`` 15; pages x copies
    could become -2."""
    big = 2**63 - 1
    access = "timestamp,user,host,action,path,bytes,destination,system,classification"
    rows = [
        f"2024-04-01 10:0{i}:00,u1,PC-1,copy,E:\\\\a{i}.dwg,{big},removable,," for i in range(2)
    ]
    ok = [
        f"2024-04-01 11:{i:02d}:00,u1,PC-1,read,\\\\\\\\fs\\\\d{i},10,share,," for i in range(GOOD)
    ]
    prints = [f"2024-04-01 12:{i:02d}:00,u1,PRN-1,doc{i}.pdf,2,1" for i in range(GOOD)]
    prints.append(f"2024-04-01 13:00:00,u1,PRN-1,big.pdf,{2**62},2")
    report, store = run_ingest(
        landing(
            {
                "file_access/2024-04-01.csv": csv_text(access, ok + rows),
                "print/2024-04-01.csv": csv_text(
                    "timestamp,user,printer,document,pages,copies", prints
                ),
            }
        )
    )
    assert_reconciles(report, store)
    quarantine = stored(store, "file_access", area="quarantine")
    assert (
        quarantine["reason"].to_list()
        == [f"bytes over the plausible maximum 1,099,511,627,776: {big}"] * 2
    )
    assert stored(store, "print", area="quarantine")["reason"].to_list() == [
        f"pages over the plausible maximum 100,000: {2**62}"
    ]


def test_a_day_s_sums_never_wrap_round(landing, run_ingest) -> None:
    """Behind the per-field maximum, the day's sums saturate: a store written by other means
    with two copies of 2**62 bytes gives the cap, not a negative number."""
    from insiderwatch.config import load_config
    from insiderwatch.features import USER_DAY, ensure_features

    access = "timestamp,user,host,action,path,bytes,destination,system,classification"
    rows = [
        f"2024-04-01 10:0{i}:00,u1,PC-1,copy,E:\\\\a{i}.dwg,{2**30},removable,," for i in range(2)
    ]
    _, store = run_ingest(landing({"file_access/2024-04-01.csv": csv_text(access, rows)}))
    target = store.partition("events", "file_access", DAY)
    pl.read_parquet(target).with_columns(bytes=pl.lit(2**62, pl.Int64)).write_parquet(target)
    ensure_features(store, [DAY], load_config())
    day = pl.read_parquet(store.partition("features", USER_DAY, DAY)).filter(pl.col("user") == "u1")
    assert day["removable_bytes"].to_list() == [2**53]


# --- vendor formats go through the same bounds -----------------------------------------------


def test_a_microsoft_365_export_over_the_site_s_file_limit_is_refused(tmp_path: Path) -> None:
    """Vendor files are read through the same bounds, the site's own."""
    from insiderwatch.adapters import stage
    from insiderwatch.config import load_config

    root = tmp_path / "m365"
    (root / "hr").mkdir(parents=True)
    (root / "hr" / "employees.csv").write_text(ROSTER, encoding="utf-8")
    records = [{"RecordType": 15, "AuditData": '{"Operation": "UserLoggedIn"}'}] * 40
    (root / "search.json").write_text(json.dumps(records), encoding="utf-8")
    site = tmp_path / "site.toml"
    site.write_text("[limits]\nmax_file_bytes = 1024\n", encoding="utf-8")
    with pytest.raises(FileError, match=r"search\.json: file is [0-9,]+ bytes, over the limit"):
        stage(root, "m365", tmp_path / "staged", load_config(site))


def test_a_cert_file_linked_out_of_the_landing_folder_is_refused(tmp_path: Path) -> None:
    from insiderwatch.adapters import stage
    from insiderwatch.config import load_config

    outside = tmp_path / "outside.csv"
    outside.write_text("id,date,user,pc,activity\n{X},01/04/2010 07:12:00,SECRET,PC-1,Logon\n")
    root = tmp_path / "cert"
    (root / "LDAP").mkdir(parents=True)
    (root / "logon.csv").symlink_to(outside)
    with pytest.raises(FileError, match=r"logon\.csv: symbolic link out of the landing folder"):
        stage(root, "cert", tmp_path / "staged", load_config())
