"""The leavers list: everyone on notice as of a day, their lookback and their open alerts.

The daily run keeps it: a person whose notice date is new (or changed) since the last run gets
their six-month lookback started automatically, so HR's entry in the roster is enough.
"""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl

from insiderwatch.config import Config
from insiderwatch.db import Database
from insiderwatch.lookback import Lookback, LookbackError, LookbackRequest, run_lookback
from insiderwatch.lookback_report import render_lookback
from insiderwatch.store import EventStore, UnsafePath, file_name_of, io_path, safe_child

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
    (``out`` defaults to ``<store>/lookbacks``; the user as :func:`file_name_of` writes it).

    On a local disk the folder is written beside its final name and moved into place, so a
    killed run leaves the previous lookback whole and a hidden folder the next one removes.
    Raises :class:`UnsafePath` for a folder that would land outside ``out``."""
    base = out if out is not None else store.root / "lookbacks"
    name = f"{file_name_of(request.user)}_{request.notice_date.isoformat()}"
    final = safe_child(base, name)
    result = run_lookback(store, request, config)
    if not isinstance(base, Path):  # object storage: each object is written whole anyway
        _write_lookback_files(final, store, request, result, config)
        return final, result
    base.mkdir(parents=True, exist_ok=True)
    for stale in base.glob(f".{name}.*.tmp"):
        shutil.rmtree(stale, ignore_errors=True)
    staging = safe_child(base, f".{name}.{uuid.uuid4().hex}.tmp")
    try:
        _write_lookback_files(staging, store, request, result, config)
        if final.exists():
            retired = safe_child(base, f".{name}.{uuid.uuid4().hex}.tmp")
            os.replace(final, retired)
            os.replace(staging, final)
            shutil.rmtree(retired)
        else:
            os.replace(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final, result


def _write_lookback_files(
    folder: Path, store: EventStore, request: LookbackRequest, result: Lookback, config: Config
) -> None:
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


def sync_leavers(
    store: EventStore, db: Database, config: Config, as_of: date, months: int = 6
) -> list[LeaverUpdate]:
    """Bring the leavers list up to ``as_of``; start the lookback of anyone newly on notice.

    The list never goes back in time: rerunning an earlier day keeps it as of the latest day
    synced (a rerun of last week once dropped this week's leavers from the next report).
    What a day's report shows is read as of that day (:func:`list_leavers`)."""
    latest = db.query("SELECT MAX(as_of) FROM leavers")[0][0]
    if latest is not None and latest > as_of:
        as_of = latest
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
            except (LookbackError, UnsafePath) as exc:
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


def list_leavers(db: Database, as_of: date | None = None) -> pl.DataFrame:
    """The leavers list; with ``as_of``, only those whose notice was known on that day."""
    where, params = ("WHERE notice_date <= ? ", (as_of,)) if as_of is not None else ("", ())
    rows = db.query(
        "SELECT user_id, name, department, notice_date, last_day, lookback_status, "
        f"lookback_verdict, open_alerts FROM leavers {where}ORDER BY notice_date DESC, user_id",
        params,
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
