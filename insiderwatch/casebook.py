"""Run a detector's own test cases through the real pipeline: landing files written from the
case, ingested (without the Great Expectations gate, which has its own tests), features built,
evidence assembled, the detector run."""

from __future__ import annotations

import csv
import io
import tempfile
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from detectors.base import Case, Detector
from detectors.settings import Tuning
from insiderwatch.calendar import is_workday
from insiderwatch.config import Config, load_config
from insiderwatch.detect import assemble
from insiderwatch.features import ensure_features
from insiderwatch.ingest import ingest
from insiderwatch.store import EventStore
from schemas.canonical import SOURCES

DOMAIN = "corp.example"
PEOPLE: tuple[dict[str, str], ...] = (
    # u1–u3 are one peer group; u4 a night-shift operator; u5 their manager; u6 in sales.
    {"user": "u1", "name": "山田 太郎", "department": "研究開発部", "role": "engineer",
     "supervisor": "u5", "personal_emails": "taro_y@gmail.com"},
    {"user": "u2", "name": "佐藤 花子", "department": "研究開発部", "role": "engineer",
     "supervisor": "u5"},
    {"user": "u3", "name": "Emily Carter", "department": "研究開発部", "role": "engineer",
     "supervisor": "u5"},
    {"user": "u4", "name": "鈴木 健", "department": "製造部", "role": "operator",
     "supervisor": "u5"},
    {"user": "u5", "name": "高橋 誠", "department": "研究開発部", "role": "manager",
     "supervisor": "", "priority": "true"},
    {"user": "u6", "name": "田中 彩", "department": "営業部", "role": "sales", "supervisor": "u5"},
)  # fmt: skip
DEFAULTS: dict[str, dict[str, Any]] = {
    "logon": {"host": "PC-1", "activity": "logon", "remote": "false"},
    "file_access": {
        "host": "PC-1",
        "action": "read",
        "path": "\\\\fs01\\rnd\\doc_{i}.docx",
        "bytes": 100_000,
        "destination": "local",
        "system": "plm",
        "classification": "",
    },
    "print": {"printer": "PRN-1", "document": "doc_{i}.pdf", "pages": 2, "copies": 1},
    "mail": {
        "direction": "outbound",
        "recipients": f"colleague@{DOMAIN}",
        "subject": "週報",
        "attachments": 0,
        "body": "",
    },
    "web": {"host": "PC-1", "url": "https://www.nikkei.com/", "action": "visit", "bytes_out": 500},
    "device": {"host": "PC-1", "activity": "connect", "device_class": "usb_storage"},
}


def case_config() -> Config:
    base = load_config()
    lists = base.lists.model_copy(
        update={
            "competitor_domains": ("rival.example",),
            "code_names": ("SAKURA", "オリオン"),
            "sanctioned_cloud": ("corp.box.com",),
        }
    )
    site = base.site.model_copy(update={"internal_domains": (DOMAIN,)})
    return base.model_copy(update={"site": site, "lists": lists})


def _email(user: str) -> str:
    return f"{user}@{DOMAIN}"


def _roster(case: Case) -> str:
    columns = SOURCES["hr"].names
    buf = io.StringIO()
    writer = csv.DictWriter(buf, columns, lineterminator="\n")
    writer.writeheader()
    for person in PEOPLE:
        row = {c: "" for c in columns}
        row.update(email=_email(person["user"]), hire_date="2015-04-01", priority="false")
        row.update(person)
        if person["user"] == case.user:
            row.update({k: str(v) for k, v in case.person.items()})
        writer.writerow(row)
    return buf.getvalue()


def _expand(template: dict[str, Any], user: str, day: date) -> list[dict[str, str]]:
    source = template["source"]
    values = {**DEFAULTS[source], **template}
    hour, minute = (int(x) for x in str(values.pop("time", "10:00")).split(":"))
    repeat, every = int(values.pop("repeat", 1)), float(values.pop("every", 1))
    values.pop("source")
    who = str(values.pop("user", user))
    start = datetime(day.year, day.month, day.day, hour, minute)
    rows = []
    for i in range(repeat):
        row = {k: str(v).replace("{i}", str(i)) for k, v in values.items()}
        row["timestamp"] = (start + timedelta(minutes=every * i)).strftime("%Y-%m-%d %H:%M:%S")
        if source == "mail":
            row.setdefault("sender", _email(who) if row["direction"] == "outbound" else "")
        else:
            row["user"] = who
        rows.append(row)
    return rows


def landing_rows(case: Case, config: Config) -> dict[str, list[dict[str, str]]]:
    """Rows per source: the history on earlier working days, then the day's events."""
    rows: dict[str, list[dict[str, str]]] = {}
    day, back = case.day, []
    probe = case.day
    while len(back) < case.history_days:
        probe -= timedelta(days=1)
        if is_workday(probe, config.site):
            back.append(probe)
    for past in sorted(back):
        for user in case.history_users:
            for template in case.history:
                for row in _expand(template, user, past):
                    rows.setdefault(template["source"], []).append(row)
    for template in case.events:
        for row in _expand(template, case.user, day):
            rows.setdefault(template["source"], []).append(row)
    return rows


def run_case(detector: Detector, case: Case, tuning: Tuning) -> pl.DataFrame:
    """The detector's findings for the case's user on the case's day."""
    config = case_config()
    with tempfile.TemporaryDirectory(prefix="iw-case-") as tmp:
        logs, store = Path(tmp) / "landing", EventStore(Path(tmp) / "store")
        (logs / "hr").mkdir(parents=True)
        (logs / "hr" / "employees.csv").write_text(_roster(case), encoding="utf-8")
        for source, rows in landing_rows(case, config).items():
            columns = SOURCES[source].names
            frame = pl.DataFrame(
                [{c: r.get(c) for c in columns} for r in rows],
                schema=dict.fromkeys(columns, pl.String),
            )
            (logs / source).mkdir()
            frame.write_csv(logs / source / "events.csv")
        report = ingest(logs, store, config, as_of=case.day)
        if report.errors or not all(c.reconciles for c in report.counts):
            raise AssertionError(f"case {case.name!r} did not ingest cleanly: {report.errors}")
        quarantined = sum(c.quarantined for c in report.counts)
        if quarantined:
            raise AssertionError(f"case {case.name!r}: {quarantined} rows quarantined")
        days = sorted({c.day for c in report.counts if c.day is not None})
        ensure_features(store, days, config)
        assembled = assemble(store, case.day, case.day, config, tuning)
        found = detector.run(assembled.evidence).collect()
    return found.filter(pl.col("user") == case.user, pl.col("local_date") == case.day)
