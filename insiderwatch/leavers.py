"""The leavers list: everyone on notice as of a day, their lookback and their open alerts.

The daily run keeps it: a person whose notice date is new (or changed) since the last run gets
their six-month lookback started automatically, so HR's entry in the roster is enough.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl

from insiderwatch.config import Config
from insiderwatch.db import Database
from insiderwatch.lookback import Lookback, LookbackError, LookbackRequest, run_lookback
from insiderwatch.lookback_report import render_lookback
from insiderwatch.store import EventStore, io_path

OPEN_STATUSES = ("new", "reviewing")


@dataclass(frozen=True)
class LeaverUpdate:
    user: str
    notice_date: date
    started_lookback: bool
    status: str


def _known(db: Database) -> dict[str, date]:
    return dict(db.query("SELECT user_id, notice_date FROM leavers"))


def _open_alerts(db: Database, user: str) -> int:
    marks = ", ".join("?" for _ in OPEN_STATUSES)
    rows = db.query(
        f"SELECT COUNT(*) FROM alerts WHERE user_id = ? AND budgeted AND status IN ({marks})",
        (user, *OPEN_STATUSES),
    )
    return int(rows[0][0])


def write_lookback(
    store: EventStore, request: LookbackRequest, config: Config, out: Path | None = None
) -> tuple[Path, Lookback]:
    """Run a lookback and write its report and tables to ``<out>/<user>_<notice_date>/``
    (``out`` defaults to ``<store>/lookbacks``)."""
    result = run_lookback(store, request, config)
    base = out if out is not None else store.root / "lookbacks"
    folder = base / f"{request.user}_{request.notice_date.isoformat()}"
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "weekly.csv").open("wb") as fh:  # a local file or an object alike
        result.weekly.write_csv(fh)
    result.weekly.write_parquet(io_path(folder / "weekly.parquet"))
    with (folder / "comparison.csv").open("wb") as fh:
        result.comparison.write_csv(fh)
    (folder / "verdict.txt").write_text(result.verdict + "\n", encoding="utf-8")
    person = (
        pl.read_parquet(io_path(store.roster_path()))
        .filter(pl.col("user") == request.user)
        .select("user", "name", "department", "role")
        .row(0, named=True)
    )
    page = render_lookback(result, person, store, config)
    (folder / "report.html").write_text(page, encoding="utf-8")
    return folder, result


def sync_leavers(
    store: EventStore, db: Database, config: Config, as_of: date, months: int = 6
) -> list[LeaverUpdate]:
    """Bring the leavers list up to ``as_of``; start the lookback of anyone newly on notice."""
    roster = pl.read_parquet(io_path(store.roster_path())).filter(
        pl.col("notice_date").is_not_null(), pl.col("notice_date") <= as_of
    )
    known = _known(db)
    stored = {
        row[0]: row[1:]
        for row in db.query(
            "SELECT user_id, lookback_status, lookback_verdict, lookback_folder FROM leavers"
        )
    }
    updates, rows = [], []
    for person in roster.sort("user").iter_rows(named=True):
        user, notice = person["user"], person["notice_date"]
        fresh = known.get(user) != notice
        if fresh:
            request = LookbackRequest(user, notice, person["last_day"], months)
            try:
                folder, result = write_lookback(store, request, config)
                status, verdict, folder_text = "done", result.verdict, str(folder)
            except LookbackError as exc:
                status, verdict, folder_text = "failed", str(exc), None
        else:
            status, verdict, folder_text = stored[user]
        updates.append(LeaverUpdate(user, notice, fresh, status))
        rows.append(
            (
                user,
                person["name"],
                person["department"],
                person["supervisor"],
                notice,
                person["last_day"],
                status,
                verdict,
                folder_text,
                _open_alerts(db, user),
                as_of,
            )
        )
    with db.transaction():
        db.execute("DELETE FROM leavers")
        db.insert(
            "leavers",
            (
                "user_id",
                "name",
                "department",
                "supervisor",
                "notice_date",
                "last_day",
                "lookback_status",
                "lookback_verdict",
                "lookback_folder",
                "open_alerts",
                "as_of",
            ),
            rows,
        )
    return updates


def list_leavers(db: Database) -> pl.DataFrame:
    rows = db.query(
        "SELECT user_id, name, department, notice_date, last_day, lookback_status, "
        "lookback_verdict, open_alerts FROM leavers ORDER BY notice_date DESC, user_id"
    )
    return pl.DataFrame(
        rows,
        schema={
            "user_id": pl.String,
            "name": pl.String,
            "department": pl.String,
            "notice_date": pl.Date,
            "last_day": pl.Date,
            "lookback_status": pl.String,
            "lookback_verdict": pl.String,
            "open_alerts": pl.Int64,
        },
        orient="row",
    )
