"""The Microsoft 365 adapter: unified audit log (CSV export, JSON array, JSON lines) and
Exchange message trace (Get-MessageTrace and the trace report) onto the canonical sources."""

from __future__ import annotations

import csv
import json
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from insiderwatch.adapters import detect_format, stage
from insiderwatch.config import config_for_logs
from insiderwatch.ingest import ingest
from insiderwatch.readers import FileError
from insiderwatch.store import EventStore
from tests.conftest import ROSTER

AS_OF = date(2024, 6, 30)
TARO = "taro.yamada@corp.example"

AUDIT = [
    {"CreationTime": "2024-06-03T01:12:44", "Id": "a1", "Operation": "FileDownloaded",
     "UserId": "Taro.Yamada@corp.example", "Workload": "SharePoint", "ClientIP": "203.0.113.5",
     "ObjectId": "https://corp.sharepoint.com/sites/RnD/Shared Documents/設計/rotor.dwg",
     "SiteUrl": "https://corp.sharepoint.com/sites/RnD/", "SourceFileName": "rotor.dwg",
     "FileSizeBytes": 1048576},
    # 15:30 UTC is 00:30 the next day in Tokyo.
    {"CreationTime": "2024-06-03T15:30:00", "Id": "a2", "Operation": "AnonymousLinkCreated",
     "UserId": TARO, "Workload": "OneDrive", "ClientIP": "203.0.113.5",
     "ObjectId": "https://corp-my.sharepoint.com/personal/taro/Documents/spec.pdf",
     "SiteUrl": "https://corp-my.sharepoint.com/personal/taro/"},
    {"CreationTime": "2024-06-03T02:00:00", "Id": "a3", "Operation": "SharingSet",
     "UserId": TARO, "Workload": "SharePoint",
     "ObjectId": "https://corp.sharepoint.com/sites/RnD/x.docx",
     "TargetUserOrGroupName": "hanako.sato@corp.example", "TargetUserOrGroupType": "Member"},
    {"CreationTime": "2024-06-03T02:01:00", "Id": "a4", "Operation": "SharingInvitationCreated",
     "UserId": TARO, "Workload": "SharePoint",
     "ObjectId": "https://corp.sharepoint.com/sites/RnD/y.docx",
     "TargetUserOrGroupName": "bob@rival.example", "TargetUserOrGroupType": "Guest"},
    {"CreationTime": "2024-06-03T02:02:00", "Id": "a5", "Operation": "FileSyncDownloadedFull",
     "UserId": TARO, "Workload": "OneDrive", "SiteUrl": "https://corp-my.sharepoint.com/personal/taro/",
     "SourceRelativeUrl": "Documents", "SourceFileName": "all.zip"},
]  # fmt: skip
SIGN_INS = [
    {"CreationTime": "2024-06-03T00:05:00", "Operation": "UserLoggedIn",
     "UserId": "hanako.sato@corp.example", "Workload": "AzureActiveDirectory",
     "ClientIP": "198.51.100.7"},
    {"CreationTime": "2024-06-03T00:06:00", "Operation": "MessageSent",
     "UserId": "hanako.sato@corp.example", "Workload": "MicrosoftTeams"},
    {"CreationTime": "2024-06-03T00:07:00", "Operation": "FileAccessed",
     "UserId": "stranger@corp.example", "Workload": "SharePoint",
     "ObjectId": "https://corp.sharepoint.com/z.txt"},
]  # fmt: skip
TRACE_HEADER = [
    "Organization", "MessageId", "Received", "SenderAddress", "RecipientAddress", "Subject",
    "Status", "ToIP", "FromIP", "Size", "MessageTraceId", "StartDate", "EndDate", "Index",
]  # fmt: skip


def _folder(root: Path) -> Path:
    (root / "hr").mkdir(parents=True)
    (root / "hr" / "employees.csv").write_text(ROSTER, encoding="utf-8")
    (root / "insiderwatch.toml").write_text('[site]\ninternal_domains = ["corp.example"]\n')
    (root / "audit").mkdir()
    with open(root / "audit" / "AuditLog.csv", "w", newline="", encoding="utf-8-sig") as fh:
        writer = csv.writer(fh)
        writer.writerow(
            ["RecordId", "CreationDate", "RecordType", "Operation", "UserId", "AuditData",
             "AssociatedAdminUnits", "AssociatedAdminUnitsNames"]
        )  # fmt: skip
        for r in AUDIT:
            writer.writerow(
                [r["Id"], r["CreationTime"] + ".0000000Z", "SharePointFileOperation",
                 r["Operation"], r["UserId"], json.dumps(r, ensure_ascii=False), "", ""]
            )  # fmt: skip
        writer.writerow(
            ["bad", "2024-06-03T00:00:00Z", "x", "FileAccessed", TARO, "{not json", "", ""]
        )
    # Search-UnifiedAuditLog | ConvertTo-Json: objects carrying AuditData as a string.
    wrapped = [{"RecordType": 15, "AuditData": json.dumps(r)} for r in SIGN_INS]
    (root / "audit" / "search.json").write_text(json.dumps(wrapped, indent=2))
    (root / "trace").mkdir()
    with open(root / "trace" / "MessageTrace.csv", "w", newline="") as fh:
        fh.write("#TYPE Deserialized.Microsoft.Exchange.Management.FfoReporting.MessageTrace\n")
        writer = csv.writer(fh, quoting=csv.QUOTE_ALL)
        writer.writerow(TRACE_HEADER)
        for rcpt in ("taro_y@gmail.com", "hanako.sato@corp.example"):
            writer.writerow(
                ["corp", "<m1@corp.example>", "6/3/2024 9:12:44 AM", TARO, rcpt,
                 "FW: rotor, spec", "Delivered", "", "", "2500000", "g", "", "", "0"]
            )  # fmt: skip
        writer.writerow(
            ["corp", "<m2@hh.example>", "6/3/2024 10:00:00 AM", "scout@hh.example", TARO,
             "ご転職のご案内", "Delivered", "", "", "12000", "g", "", "", "2"]
        )  # fmt: skip
    return root


def _run(root: Path, store: Path | None):
    config = config_for_logs(root)
    staged = stage(root, "auto", root.parent / "staged", config)
    report = ingest(staged.folder, EventStore(store) if store else None, config, AS_OF)
    return staged, report


def test_audit_log_and_message_trace_map_onto_canonical_sources(tmp_path: Path) -> None:
    root = _folder(tmp_path / "m365")
    assert detect_format(root) == "m365"
    staged, _ = _run(root, tmp_path / "store")
    assert staged.vendor_rows == {
        "audit/AuditLog.csv": 6, "audit/search.json": 3, "trace/MessageTrace.csv": 3
    }  # fmt: skip
    assert staged.skipped == {"MessageSent": 1} and staged.folded == 1
    assert staged.reconciles
    assert any("MessageSent 1" in w for w in staged.warnings)
    store = EventStore(tmp_path / "store")

    files = store.scan("file_access").collect().sort("source_file", "source_line")
    assert files.select("user", "action", "destination", "source_line").rows() == [
        ("u1", "download", "local", 2),
        ("u1", "share", "cloud", 3),  # anonymous link
        ("u1", "share", "share", 4),  # shared with a colleague
        ("u1", "share", "cloud", 5),  # invited a guest
        ("u1", "download", "local", 6),  # OneDrive sync
    ]
    first = files.row(0, named=True)
    assert first["bytes"] == 1048576 and first["host"] == "203.0.113.5"
    assert first["path"].endswith("設計/rotor.dwg")
    assert first["system"] == "https://corp.sharepoint.com/sites/RnD/"
    assert files.row(4, named=True)["path"] == (
        "https://corp-my.sharepoint.com/personal/taro/Documents/all.zip"
    )
    # Audit times are UTC: 15:30 UTC on the 3rd is the 4th in Tokyo.
    anonymous = files.row(1, named=True)
    assert anonymous["timestamp"].isoformat() == "2024-06-03T15:30:00+00:00"
    assert anonymous["local_date"] == date(2024, 6, 4)

    logon = store.scan("logon").collect()
    assert logon.select("user", "activity", "host", "source_file", "source_line").rows() == [
        ("u3", "logon", "198.51.100.7", "audit/search.json", 2)
    ]
    mail = store.scan("mail").collect().sort("timestamp")
    sent, received = mail.row(0, named=True), mail.row(1, named=True)
    assert (sent["direction"], sent["user"], sent["size_bytes"]) == ("outbound", "u1", 2500000)
    assert sent["recipients"] == ["taro_y@gmail.com", "hanako.sato@corp.example"]
    assert sent["subject"] == "FW: rotor, spec" and sent["source_line"] == 3
    assert (received["direction"], received["user"]) == ("inbound", "u1")


def test_bad_audit_records_are_quarantined_with_file_and_line(tmp_path: Path) -> None:
    root = _folder(tmp_path / "m365")
    _, report = _run(root, tmp_path / "store")
    quarantine = (
        EventStore(tmp_path / "store")
        .scan("file_access", area="quarantine")
        .collect()
        .sort("source_file")
        .select("source_file", "source_line", "reason")
    )
    assert quarantine.rows() == [
        ("audit/AuditLog.csv", 7, "AuditData is not a JSON record with an Operation"),
        ("audit/search.json", 10, "unknown user 'stranger@corp.example' (not in the roster)"),
    ]
    counts = [c for c in report.counts if c.source == "file_access"]
    assert all(c.reconciles for c in counts)
    assert sum(c.read for c in counts) == 7  # 5 file records + 1 broken + 1 stranger


def test_json_lines_and_the_trace_report_layout(tmp_path: Path) -> None:
    root = tmp_path / "m365"
    (root / "hr").mkdir(parents=True)
    (root / "hr" / "employees.csv").write_text(ROSTER, encoding="utf-8")
    (root / "insiderwatch.toml").write_text('[site]\ninternal_domains = ["corp.example"]\n')
    lines = [json.dumps(AUDIT[0]), "{broken", json.dumps(AUDIT[3])]
    (root / "audit.jsonl").write_text("\n".join(lines) + "\n")
    with open(root / "trace_report.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(
            ["origin_timestamp_utc", "sender_address", "recipient_status", "message_subject",
             "total_bytes", "message_id", "network_message_id", "directionality"]
        )  # fmt: skip
        writer.writerow(
            ["2024-06-03T09:12:44.1230000Z", TARO,
             "taro_y@gmail.com##Receive, Send;x@partner.example##Receive, Send",
             "rotor", "2048", "<m9@corp.example>", "n1", "Originating"]
        )  # fmt: skip
    assert detect_format(root) == "m365"
    staged, report = _run(root, tmp_path / "store")
    assert staged.reconciles and report.errors == []
    store = EventStore(tmp_path / "store")
    files = store.scan("file_access").collect().sort("source_line")
    assert files.select("action", "source_line").rows() == [("download", 1), ("share", 3)]
    quarantine = store.scan("file_access", area="quarantine").collect()
    assert quarantine.select("source_file", "source_line").rows() == [("audit.jsonl", 2)]
    assert quarantine["reason"][0].startswith("malformed JSON")
    mail = store.scan("mail").collect().row(0, named=True)
    assert mail["recipients"] == ["taro_y@gmail.com", "x@partner.example"]
    assert (mail["direction"], mail["user"], mail["size_bytes"]) == ("outbound", "u1", 2048)
    assert mail["timestamp"].isoformat() == "2024-06-03T09:12:44+00:00"


def test_without_a_roster_the_adapter_says_what_is_missing(tmp_path: Path) -> None:
    root = _folder(tmp_path / "m365")
    (root / "hr" / "employees.csv").unlink()
    with pytest.raises(FileError, match="Microsoft 365 has no HR data"):
        _run(root, None)


def test_window_leaves_out_records_on_other_days(tmp_path: Path) -> None:
    root = _folder(tmp_path / "m365")
    config = config_for_logs(root)
    staged = stage(root, "m365", tmp_path / "staged", config, date(2024, 6, 4), date(2024, 6, 4))
    # Only the anonymous link falls on 4 June in Tokyo; the broken record has no day and stays.
    assert staged.reconciles
    days = sorted(p.name for p in (tmp_path / "staged" / "file_access").iterdir())
    assert days == ["2024-06-04", "undated"]
    staged_rows = pl.read_parquet(tmp_path / "staged" / "file_access" / "2024-06-04")
    assert staged_rows["_origin_line"].to_list() == [3]
