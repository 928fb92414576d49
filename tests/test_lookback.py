"""The leaver lookback: a thief's theft weeks stand out and the channels are named; a benign
leaver's lookback says nothing stands out; requests from outside are validated."""

from __future__ import annotations

import itertools
import re
import shutil
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from insiderwatch.cli import app
from insiderwatch.config import config_for_logs
from insiderwatch.ingest import ingest
from insiderwatch.lookback import (
    LookbackError,
    LookbackRequest,
    months_before,
    run_lookback,
    validate_request,
)
from insiderwatch.store import EventStore

REPO = Path(__file__).resolve().parent.parent
SAMPLE_LOGS = REPO / "sample_logs"


@pytest.fixture(scope="module")
def sample_store(ingested_sample: Path, tmp_path_factory) -> EventStore:
    root = tmp_path_factory.mktemp("lookback") / "store"
    shutil.copytree(ingested_sample, root)
    (root / "alerts.duckdb").unlink()  # only the events; each test brings its own database
    return EventStore(root)


def leavers(store: EventStore) -> pl.DataFrame:
    roster = pl.read_parquet(store.roster_path())
    return roster.filter(pl.col("notice_date").is_not_null())


def labels() -> pl.DataFrame:
    return pl.read_csv(SAMPLE_LOGS / "labels.csv", try_parse_dates=True)


def request_for(store: EventStore, user: str) -> LookbackRequest:
    row = leavers(store).filter(pl.col("user") == user).row(0, named=True)
    return LookbackRequest(user, row["notice_date"], row["last_day"], 6)


def test_a_thief_stands_out_week_by_week_and_by_channel(sample_store) -> None:
    theft = labels().filter(pl.col("scenario") == "leaver_theft")
    thief = theft["user"][0]
    request = request_for(sample_store, thief)
    result = run_lookback(sample_store, request, config_for_logs(SAMPLE_LOGS))

    assert result.verdict.startswith("Stands out in the 30 days before notice")
    named = " ".join(result.standouts)
    for channel in ("downloads", "removable media", "printing", "極秘 access"):
        assert channel in named, result.standouts
    weekly = result.weekly
    theft_weeks = theft["date"].dt.truncate("1w").unique().implode()
    earlier = weekly.filter(
        pl.col("phase") == "before notice",
        ~pl.col("week").is_in(theft_weeks),
        pl.col("active_days") > 0,
    )
    usual = earlier["files_downloaded"].median()
    stolen = weekly.filter(pl.col("week").is_in(theft_weeks))
    assert stolen.height >= 2
    assert (stolen["files_downloaded"] >= 5 * usual).all(), (usual, stolen["files_downloaded"])
    assert (stolen["printed_pages"] > earlier["printed_pages"].max()).any()
    assert (weekly["mean_file_size"] >= 0).all()
    assert stolen["mean_file_size"].max() > earlier["mean_file_size"].max()


def test_a_benign_leaver_has_nothing_standing_out(sample_store) -> None:
    insiders = set(labels()["user"].to_list())
    benign = [u for u in leavers(sample_store)["user"].to_list() if u not in insiders]
    assert benign
    for user in benign:
        result = run_lookback(
            sample_store, request_for(sample_store, user), config_for_logs(SAMPLE_LOGS)
        )
        assert result.standouts == [], (user, result.standouts)
        assert result.verdict.startswith("Nothing stands out"), result.verdict


def test_comparison_sets_the_person_against_their_peer_group_alone(sample_store) -> None:
    """Recomputed from the stored person-days: the person's own days on one side, everyone
    else in their department and role (not the person, not other groups) on the other."""
    thief = labels().filter(pl.col("scenario") == "leaver_theft")["user"][0]
    request = request_for(sample_store, thief)
    result = run_lookback(sample_store, request, config_for_logs(SAMPLE_LOGS))
    features = pl.read_parquet(sample_store.root / "features" / "user_day" / "*" / "*.parquet")
    roster = pl.read_parquet(sample_store.roster_path())
    me = roster.filter(pl.col("user") == thief).row(0, named=True)
    same = roster.filter(pl.col("department") == me["department"], pl.col("role") == me["role"])
    assert same.height >= 4  # a group of department and role, not the department alone
    peers = set(same["user"]) - {thief}
    start, notice = request.notice_date - timedelta(days=30), request.notice_date
    stored = [d for d in features["local_date"].unique() if start <= d < notice]
    recent = features.filter(pl.col("local_date").is_between(start, notice, closed="left"))
    own = recent.filter(pl.col("user") == thief)
    theirs = recent.filter(pl.col("user").is_in(list(peers)))
    n_peers = theirs["user"].n_unique()
    assert 0 < n_peers <= len(peers)
    by_measure = {r["measure"]: r for r in result.comparison.iter_rows(named=True)}
    for measure in ("files_downloaded", "printed_pages", "events"):
        row = by_measure[measure]
        assert row["last_30_days"] == pytest.approx(own[measure].sum() / len(stored))
        expected = theirs[measure].sum() / (len(stored) * n_peers)
        assert row["peers_last_30_days"] == pytest.approx(expected), measure


def test_weekly_table_covers_every_week_of_the_period(sample_store) -> None:
    thief = labels().filter(pl.col("scenario") == "leaver_theft")["user"][0]
    request = request_for(sample_store, thief)
    weekly = run_lookback(sample_store, request, config_for_logs(SAMPLE_LOGS)).weekly
    weeks = weekly["week"].to_list()
    assert weeks == sorted(weeks) and len(set(weeks)) == len(weeks)
    assert all((b - a).days == 7 for a, b in itertools.pairwise(weeks))
    assert weeks[0] <= request.start and weeks[-1] <= request.last_day
    assert set(weekly["phase"]) == {"before notice", "notice week", "after notice"}
    assert weekly.filter(pl.col("week") < date(2024, 3, 25))["active_days"].sum() == 0


ROSTER = pl.DataFrame({"user": ["u00001", "u00002"]})
N = "2024-05-01"
BAD_DATE = "notice_date must be a date as YYYY-MM-DD"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            {"user": "u09999", "notice_date": N},
            "unknown user 'u09999': not on the roster",
        ),
        ({"user": "../../etc/passwd", "notice_date": N}, "user must be a plain user id"),
        ({"user": "u1'; DROP TABLE alerts;--", "notice_date": N}, "plain user id"),
        ({"user": 42, "notice_date": N}, "user must be a plain user id"),
        ({"user": "u00001"}, "notice_date is required (YYYY-MM-DD)"),
        (
            {"user": "u00001", "notice_date": "01/05/2024"},
            "notice_date must be a date as YYYY-MM-DD",
        ),
        (
            {"user": "u00001", "notice_date": "2024-02-30"},
            "notice_date must be a date as YYYY-MM-DD",
        ),
        (
            {"user": "u00001", "notice_date": N, "last_day": "2024-04-30"},
            "last_day 2024-04-30 is before notice_date 2024-05-01",
        ),
        ({"user": "u00001", "notice_date": N, "months": 0}, "months must be a whole"),
        ({"user": "u00001", "notice_date": N, "months": "6"}, "months must be a whole"),
        ({"user": "u00001", "notice_date": N, "path": "/tmp"}, "unknown field(s): path"),
    ],
)
def test_bad_requests_fail_with_the_reason(raw, message: str) -> None:
    with pytest.raises(LookbackError, match=re.escape(message)):
        validate_request(raw, ROSTER)


def test_months_before_clamps_to_the_month() -> None:
    assert months_before(date(2024, 8, 31), 6) == date(2024, 2, 29)
    assert months_before(date(2024, 5, 27), 6) == date(2023, 11, 27)
    assert months_before(date(2024, 1, 15), 1) == date(2023, 12, 15)


def test_cli_writes_the_weekly_table(sample_store, tmp_path: Path) -> None:
    thief = labels().filter(pl.col("scenario") == "leaver_theft")["user"][0]
    request = request_for(sample_store, thief)
    runner = CliRunner(env={"COLUMNS": "160"})
    result = runner.invoke(
        app,
        [
            "lookback", thief, "--notice-date", request.notice_date.isoformat(),
            "--last-day", request.last_day.isoformat(), "--store", str(sample_store.root),
            "--out", str(tmp_path), "--config", str(SAMPLE_LOGS / "insiderwatch.toml"),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Stands out" in result.output
    folder = tmp_path / f"{thief}_{request.notice_date.isoformat()}"
    assert "<svg" in (folder / "report.html").read_text(encoding="utf-8")
    assert (
        pl.read_csv(folder / "weekly.csv").height
        == pl.read_parquet(folder / "weekly.parquet").height
    )
    bad = runner.invoke(
        app,
        ["lookback", "nobody", "--notice-date", "2024-05-01", "--store", str(sample_store.root)],
    )
    assert bad.exit_code == 2 and "unknown user 'nobody'" in bad.output


def test_leavers_list_starts_each_lookback_once(sample_store, tmp_path: Path) -> None:
    from insiderwatch.db import Database
    from insiderwatch.leavers import list_leavers, sync_leavers

    config = config_for_logs(SAMPLE_LOGS)
    db = Database(str(tmp_path / "alerts.duckdb"))
    notices = leavers(sample_store).sort("notice_date")
    first_notice = notices["notice_date"][0]

    early = sync_leavers(sample_store, db, config, first_notice)
    assert [(u.user, u.started_lookback, u.status) for u in early] == [
        (notices["user"][0], True, "done")
    ]
    assert (sample_store.root / "lookbacks" / f"{notices['user'][0]}_{first_notice}").is_dir()
    again = sync_leavers(sample_store, db, config, first_notice)
    assert [u.started_lookback for u in again] == [False]

    late = sync_leavers(sample_store, db, config, date(2024, 6, 29))
    started = {u.user for u in late if u.started_lookback}
    assert started == set(notices["user"][1:].to_list())
    listed = list_leavers(db)
    assert sorted(listed["user_id"].to_list()) == sorted(notices["user"].to_list())
    assert set(listed["lookback_status"]) == {"done"}
    thief = labels().filter(pl.col("scenario") == "leaver_theft")["user"][0]
    verdicts = dict(zip(listed["user_id"], listed["lookback_verdict"], strict=True))
    assert verdicts[thief].startswith("Stands out")
    assert all(v.startswith("Nothing stands out") for u, v in verdicts.items() if u != thief)

    moved = pl.read_parquet(sample_store.roster_path()).with_columns(
        notice_date=pl.when(pl.col("user") == thief)
        .then(pl.col("notice_date") - pl.duration(days=7))
        .otherwise(pl.col("notice_date"))
    )
    sample_store.write_roster(moved)
    try:
        redo = sync_leavers(sample_store, db, config, date(2024, 6, 29))
        assert {u.user for u in redo if u.started_lookback} == {thief}
    finally:
        sample_store.write_roster(
            moved.with_columns(
                notice_date=pl.when(pl.col("user") == thief)
                .then(pl.col("notice_date") + pl.duration(days=7))
                .otherwise(pl.col("notice_date"))
            )
        )
    db.close()


def test_leavers_list_counts_open_alerts(sample_store, tmp_path: Path) -> None:
    from datetime import datetime

    from insiderwatch.alerts import publish, set_status
    from insiderwatch.db import Database
    from insiderwatch.leavers import list_leavers, sync_leavers
    from insiderwatch.scoring import alert_id
    from tests.test_alert_store import alerts_for, findings_for

    thief = labels().filter(pl.col("scenario") == "leaver_theft")["user"][0]
    day = date(2024, 6, 3)
    db = Database(str(tmp_path / "alerts.duckdb"))
    alerts = alerts_for([(thief, day, 90)])
    publish(db, alerts, findings_for(alerts), day, day, "r1")
    config = config_for_logs(SAMPLE_LOGS)
    sync_leavers(sample_store, db, config, date(2024, 6, 29))
    counts = dict(zip(*list_leavers(db).select("user_id", "open_alerts"), strict=True))
    assert counts[thief] == 1 and sum(counts.values()) == 1
    set_status(db, alert_id(thief, day), "dismissed", datetime(2024, 6, 4))
    sync_leavers(sample_store, db, config, date(2024, 6, 29))
    assert dict(zip(*list_leavers(db).select("user_id", "open_alerts"), strict=True))[thief] == 0
    db.close()


HOSTILE_ROSTER = """\
user,name,email,department,role,supervisor,hire_date,notice_date,last_day,priority,personal_emails
u1,<script>alert('name')</script>,u1@corp.example,"R&D <b>",engineer,,2019-04-01,2024-04-20,,false,
u2,佐藤 花子,u2@corp.example,"R&D <b>",engineer,,2019-04-01,,,false,
"""


def test_lookback_page_escapes_everything_it_renders(landing, tmp_path: Path) -> None:
    from insiderwatch.config import load_config
    from insiderwatch.leavers import write_lookback

    hostile_path = "\\\\fs01\\rnd\\<img src=x onerror=alert(1)>.docx"
    rows = [
        f'2024-04-{d:02d} 10:00:00,u1,PC-1,download,"{hostile_path}",5000000,local,plm,'
        for d in range(1, 20)
    ]
    logs = landing(
        {"file_access/events.csv": "\n".join(
            ["timestamp,user,host,action,path,bytes,destination,system,classification", *rows]
        ) + "\n"},
        roster=HOSTILE_ROSTER,
    )  # fmt: skip
    store = EventStore(tmp_path / "store")
    config = load_config()
    report = ingest(logs, store, config, as_of=date(2024, 4, 30))
    assert not report.errors and sum(c.quarantined for c in report.counts) == 0
    folder, _ = write_lookback(store, LookbackRequest("u1", date(2024, 4, 20)), config)
    page = (folder / "report.html").read_text(encoding="utf-8")

    assert "<script>alert" not in page and "<img src=x" not in page and "R&D <b>" not in page
    assert "&lt;script&gt;alert(&#39;name&#39;)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;.docx" in page
    assert "R&amp;D &lt;b&gt;" in page
    assert page.count("<svg") == 2  # weekly charts and the heat map
    assert 'id="verdict"' in page and 'id="weekly"' in page and 'id="top-events"' in page
