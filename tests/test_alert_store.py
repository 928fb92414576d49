"""The alert store on DuckDB and on a live PostgreSQL server: reruns replace, never duplicate,
and keep triage; publishing is all or nothing; exports are spreadsheet-safe."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import polars as pl
import pytest

from insiderwatch.alerts import TriageError, export_alerts, list_alerts, publish, set_status
from insiderwatch.db import Database
from insiderwatch.detect import empty_findings
from insiderwatch.scoring import ALERT_SCHEMA, alert_id

D1, D2 = date(2024, 6, 12), date(2024, 6, 13)


def alerts_for(rows: list[tuple[str, date, int]]) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {
                "alert_id": alert_id(user, day),
                "alert_date": day,
                "user": user,
                "name": '=HYPERLINK("http://x")' if user == "u9" else f"名前 {user}",
                "department": "研究開発部",
                "supervisor": "u5",
                "score": score,
                "severity": "high" if score >= 65 else "medium",
                "rank": rank,
                "budgeted": rank <= 2,
                "detectors": ["removable_media_copy"],
                "reasons": [f"copied {score} files to removable media; usual 0; peers 1"],
                "evidence": ["file_access/2024-06-12.csv:3"],
                "model_score": 0.1,
                "drivers": [],
            }
            for rank, (user, day, score) in enumerate(rows, start=1)
        ],
        schema=ALERT_SCHEMA,
    )


def findings_for(alerts: pl.DataFrame) -> pl.DataFrame:
    base = empty_findings()
    rows = pl.DataFrame(
        {
            "detector": ["removable_media_copy"] * alerts.height,
            "user": alerts["user"],
            "local_date": alerts["alert_date"],
            "severity": alerts["severity"],
            "kind": ["detection"] * alerts.height,
            "booster": [None] * alerts.height,
            "channel": ["removable"] * alerts.height,
            "value": alerts["score"].cast(pl.Float64),
            "reason": alerts["reasons"].list.first(),
            "evidence": alerts["evidence"],
            "top_secret": [False] * alerts.height,
        },
        schema=base.schema,
    )
    return rows.with_columns(points=pl.lit(55.0))


@pytest.fixture
def db(alert_db_url: str):
    database = Database(alert_db_url)
    yield database
    database.close()


def table_rows(db: Database, table: str) -> list[tuple]:
    return sorted(db.query(f"SELECT * FROM {table}"), key=repr)


def test_rerun_replaces_without_duplicates_and_keeps_triage(db: Database) -> None:
    alerts = alerts_for([("u1", D1, 90), ("u2", D1, 70), ("u3", D1, 55), ("u1", D2, 80)])
    findings = findings_for(alerts)
    assert publish(db, alerts, findings, D1, D2, "run-1") == 4
    target = alert_id("u2", D1)
    assert set_status(db, target, "reviewing", datetime(2024, 6, 13, 9), "checking", "sec") == "new"
    before = [r[:-1] for r in table_rows(db, "alerts")]  # all but run_id

    publish(db, alerts, findings, D1, D2, "run-2")

    after = [r[:-1] for r in table_rows(db, "alerts")]
    assert after == before
    assert db.query("SELECT COUNT(*), COUNT(DISTINCT alert_id) FROM alerts")[0] == (4, 4)
    assert db.query("SELECT COUNT(*) FROM findings")[0][0] == 4
    listed = list_alerts(db, include_over_budget=True)
    assert dict(zip(listed["alert_id"], listed["status"], strict=True))[target] == "reviewing"


def test_an_alert_that_disappears_and_returns_gets_its_status_back(db: Database) -> None:
    alerts = alerts_for([("u1", D1, 90), ("u2", D1, 70)])
    publish(db, alerts, findings_for(alerts), D1, D1, "run-1")
    gone = alert_id("u2", D1)
    set_status(db, gone, "dismissed", datetime(2024, 6, 13, 9), "known project", "sec")

    fewer = alerts.filter(pl.col("user") == "u1")
    publish(db, fewer, findings_for(fewer), D1, D1, "run-2")
    assert [r[0] for r in db.query("SELECT alert_id FROM alerts")] == [alert_id("u1", D1)]

    publish(db, alerts, findings_for(alerts), D1, D1, "run-3")
    status = dict(db.query("SELECT alert_id, status FROM alerts"))
    assert status == {alert_id("u1", D1): "new", gone: "dismissed"}


def test_publishing_a_range_leaves_other_days_alone(db: Database) -> None:
    both = alerts_for([("u1", D1, 90), ("u1", D2, 80)])
    publish(db, both, findings_for(both), D1, D2, "run-1")
    only_d2 = alerts_for([("u4", D2, 60)])
    publish(db, only_d2, findings_for(only_d2), D2, D2, "run-2")
    assert sorted(db.query("SELECT user_id, alert_date FROM alerts")) == [("u1", D1), ("u4", D2)]


def test_a_failed_publish_changes_nothing(db: Database) -> None:
    alerts = alerts_for([("u1", D1, 90)])
    publish(db, alerts, findings_for(alerts), D1, D1, "run-1")
    before = table_rows(db, "alerts")
    broken = pl.concat([alerts_for([("u2", D1, 70)])] * 2)  # the same alert_id twice
    with pytest.raises(Exception):  # noqa: B017 - DuckDB and psycopg raise their own types
        publish(db, broken, findings_for(broken), D1, D1, "run-2")
    assert table_rows(db, "alerts") == before


def test_triage_rejects_unknown_status_and_alert(db: Database) -> None:
    alerts = alerts_for([("u1", D1, 90)])
    publish(db, alerts, findings_for(alerts), D1, D1, "run-1")
    with pytest.raises(TriageError, match="unknown status 'closed'"):
        set_status(db, alert_id("u1", D1), "closed", datetime(2024, 6, 13))
    with pytest.raises(TriageError, match="no alert 'IW-nope'"):
        set_status(db, "IW-nope", "confirmed", datetime(2024, 6, 13))
    set_status(db, alert_id("u1", D1), "reviewing", datetime(2024, 6, 13, 9))
    set_status(db, alert_id("u1", D1), "confirmed", datetime(2024, 6, 13, 10))
    history = db.query("SELECT seq, status FROM triage ORDER BY seq")
    assert history == [(1, "reviewing"), (2, "confirmed")]


def test_list_is_budgeted_by_default_and_ranked(db: Database) -> None:
    alerts = alerts_for([("u1", D1, 90), ("u2", D1, 70), ("u3", D1, 55)])
    publish(db, alerts, findings_for(alerts), D1, D1, "run-1")
    sent = list_alerts(db)
    assert sent["user_id"].to_list() == ["u1", "u2"]
    assert list_alerts(db, include_over_budget=True).height == 3
    assert sent["reasons"].to_list()[0] == ["copied 90 files to removable media; usual 0; peers 1"]


def test_csv_export_neutralises_formulas(db: Database, tmp_path: Path) -> None:
    alerts = alerts_for([("u9", D1, 90)])
    publish(db, alerts, findings_for(alerts), D1, D1, "run-1")
    out = tmp_path / "alerts.csv"
    export_alerts(list_alerts(db), out, "csv")
    text = out.read_text(encoding="utf-8")
    assert "'=HYPERLINK" in text
    assert ",=HYPERLINK" not in text and '"=HYPERLINK' not in text
    parquet = tmp_path / "alerts.parquet"
    export_alerts(list_alerts(db), parquet, "parquet")
    assert pl.read_parquet(parquet)["reasons"].to_list()[0][0].startswith("copied 90 files")
