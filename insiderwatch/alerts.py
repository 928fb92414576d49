"""The alert store: alerts, findings and triage in the SQL database (DuckDB or PostgreSQL).

Publishing a range of days replaces that range's alerts and findings in one transaction, so a
rerun leaves exactly one copy; triage lives in its own history table keyed by the stable
alert_id, so a status set by an analyst survives any number of reruns.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

import polars as pl

from insiderwatch.db import Database
from insiderwatch.scoring import STATUSES


class TriageError(ValueError):
    """A triage decision that cannot be recorded (unknown status or alert)."""


def _json(values: list | None) -> str:
    return json.dumps(list(values or []), ensure_ascii=False)


def latest_status(db: Database) -> dict[str, str]:
    rows = db.query("SELECT alert_id, seq, status FROM triage ORDER BY alert_id, seq")
    latest: dict[str, str] = {}
    for alert, _seq, status in rows:
        latest[alert] = status
    return latest


FINDING_TABLE_COLUMNS = (
    "finding_id",
    "alert_id",
    "alert_date",
    "user_id",
    "detector",
    "severity",
    "points",
    "channel",
    "value",
    "reason",
    "evidence",
    "run_id",
)


def publish(
    db: Database,
    alerts: pl.DataFrame,
    findings: pl.DataFrame,
    start: date,
    end: date,
    run_id: str,
) -> int:
    """Replace the alerts and findings of ``start``–``end``; returns alerts written."""
    status = latest_status(db)
    keyed = findings.join(
        alerts.select("user", pl.col("alert_date").alias("local_date"), "alert_id"),
        on=["user", "local_date"],
        how="left",
    )
    from insiderwatch.scoring import finding_id

    alert_rows = [
        (
            a["alert_id"],
            a["alert_date"],
            a["user"],
            a["name"],
            a["department"],
            a["supervisor"],
            a["score"],
            a["severity"],
            a["rank"],
            a["budgeted"],
            _json(a["detectors"]),
            _json(a["reasons"]),
            _json(a["evidence"]),
            a["model_score"],
            _json(a["drivers"]),
            status.get(a["alert_id"], "new"),
            run_id,
        )
        for a in alerts.iter_rows(named=True)
    ]
    finding_rows = {}
    for f in keyed.iter_rows(named=True):
        fid = finding_id(f["detector"], f["user"], f["local_date"], f["reason"])
        finding_rows[fid] = (
            fid,
            f["alert_id"],
            f["local_date"],
            f["user"],
            f["detector"],
            f["severity"],
            f["points"],
            f["channel"],
            f["value"],
            f["reason"],
            _json(f["evidence"]),
            run_id,
        )
    with db.transaction():
        db.execute("DELETE FROM alerts WHERE alert_date BETWEEN ? AND ?", (start, end))
        db.execute("DELETE FROM findings WHERE alert_date BETWEEN ? AND ?", (start, end))
        db.insert("alerts", (*ALERT_COLUMNS, "run_id"), alert_rows)
        db.insert("findings", FINDING_TABLE_COLUMNS, finding_rows.values())
    return len(alert_rows)


ALERT_COLUMNS = (
    "alert_id",
    "alert_date",
    "user_id",
    "name",
    "department",
    "supervisor",
    "score",
    "severity",
    "rank",
    "budgeted",
    "detectors",
    "reasons",
    "evidence",
    "model_score",
    "drivers",
    "status",
)


def list_alerts(
    db: Database,
    start: date | None = None,
    end: date | None = None,
    include_over_budget: bool = False,
    status: str | None = None,
) -> pl.DataFrame:
    """Alerts as a frame, newest day first, then by rank; list columns decoded."""
    where, params = ["1 = 1"], []
    if start is not None:
        where.append("alert_date >= ?")
        params.append(start)
    if end is not None:
        where.append("alert_date <= ?")
        params.append(end)
    if not include_over_budget:
        where.append("budgeted")
    if status is not None:
        where.append("status = ?")
        params.append(status)
    rows = db.query(
        f"SELECT {', '.join(ALERT_COLUMNS)} FROM alerts WHERE {' AND '.join(where)} "
        "ORDER BY alert_date DESC, rank",
        params,
    )
    frame = pl.DataFrame(
        rows,
        schema={
            "alert_id": pl.String,
            "alert_date": pl.Date,
            "user_id": pl.String,
            "name": pl.String,
            "department": pl.String,
            "supervisor": pl.String,
            "score": pl.Int64,
            "severity": pl.String,
            "rank": pl.Int64,
            "budgeted": pl.Boolean,
            "detectors": pl.String,
            "reasons": pl.String,
            "evidence": pl.String,
            "model_score": pl.Float64,
            "drivers": pl.String,
            "status": pl.String,
        },
        orient="row",
    )
    decode = pl.List(pl.String)
    return frame.with_columns(
        [pl.col(c).str.json_decode(decode) for c in ("detectors", "reasons", "evidence", "drivers")]
    )


def set_status(
    db: Database,
    alert: str,
    status: str,
    changed_at: datetime,
    note: str = "",
    actor: str = "",
) -> str:
    """Record a triage decision; returns the previous status."""
    if status not in STATUSES:
        raise TriageError(f"unknown status {status!r}; use one of {', '.join(STATUSES)}")
    found = db.query("SELECT status FROM alerts WHERE alert_id = ?", (alert,))
    if not found:
        raise TriageError(f"no alert {alert!r}")
    previous = found[0][0]
    with db.transaction():
        seq = db.query("SELECT COALESCE(MAX(seq), 0) + 1 FROM triage WHERE alert_id = ?", (alert,))
        db.execute(
            "INSERT INTO triage (alert_id, seq, status, note, actor, changed_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (alert, seq[0][0], status, note, actor, changed_at),
        )
        db.execute("UPDATE alerts SET status = ? WHERE alert_id = ?", (status, alert))
    return previous


# Characters that make a spreadsheet treat a cell as a formula (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: pl.Expr) -> pl.Expr:
    """Prefix a quote to text a spreadsheet would run as a formula (``=HYPERLINK(…)``)."""
    risky = value.str.starts_with(_FORMULA_START[0])
    for mark in _FORMULA_START[1:]:
        risky = risky | value.str.starts_with(mark)
    return pl.when(risky).then(pl.concat_str(pl.lit("'"), value)).otherwise(value)


def export_alerts(frame: pl.DataFrame, out: Path, fmt: str) -> None:
    """Parquet keeps list columns; CSV joins them with " | " and neutralises formulas."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "parquet":
        frame.write_parquet(out)
        return
    flat = frame.with_columns(
        [pl.col(c).list.join(" | ") for c, t in frame.schema.items() if isinstance(t, pl.List)]
    )
    text = [c for c, t in flat.schema.items() if t == pl.String]
    flat.with_columns([spreadsheet_safe(pl.col(c)).alias(c) for c in text]).write_csv(out)
