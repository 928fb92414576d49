# ruff: noqa: E501 - CERT records are long lines, kept whole so they read as the files do
"""The CERT insider-threat adapter, on files written in the published layout (the real data may
not be redistributed): exact mapping, quirks, bad records in quarantine with the CERT file and
line, the LDAP roster, the answer key, and a generated incident detected end to end."""

from __future__ import annotations

import csv
import gzip
import io
import random
import re
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from insiderwatch.adapters import detect_format, stage
from insiderwatch.adapters.cert import read_answers
from insiderwatch.adapters.cert_writer import write_cert
from insiderwatch.cli import app
from insiderwatch.config import config_for_logs
from insiderwatch.db import Database, default_url
from insiderwatch.ingest import ingest
from insiderwatch.readers import FileError, iter_csv_blocks
from insiderwatch.store import EventStore
from schemas import cert as spec
from tests.conftest import SAMPLE_LOGS

AS_OF = date(2010, 3, 31)
SITE = '[site]\ninternal_domains = ["dtaa.com"]\ntimezone = "America/New_York"\n'

LDAP_JAN = """\
employee_name,user_id,email,role,business_unit,functional_unit,department,team,supervisor
Calvin Edan Love,CEL0001,Calvin.Edan.Love@dtaa.com,President,1,1 - Executive,,,
Ava Iris Moss,AIM0002,Ava.Iris.Moss@dtaa.com,ProductionLineWorker,1,2 - Manufacturing,3 - Assembly,1 - Line A,Calvin Edan Love
Bob Kai Ng,BKN0003,Bob.Kai.Ng@dtaa.com,Engineer,1,3 - Research And Engineering,2 - Engineering,4 - Design,Calvin Edan Love
"""
# Bob is gone from the February snapshot: he left in January.
LDAP_FEB = "\n".join(LDAP_JAN.splitlines()[:3]) + "\n"

LOGON = """\
id,date,user,pc,activity
{X1D9-S0ES98JV-5357PWMI},01/04/2010 07:12:44,AIM0002,PC-6377,Logon
{G2B3-L6EJ61GT-2222RKSO},01/04/2010 17:01:02,AIM0002,PC-6377,Logoff
{U6Q3-U0WE70UA-3770UREL},01/04/2010 08:02:10,BKN0003,PC-2104,Logon
{I0N5-R7NA26TG-6263KNGM},01/05/2010 23:48:00,BKN0003,PC-2104,Logon
{A1B2-C3D4E5F6-G7H8I9J0},01/05/2010 09:00:00,AIM0002,PC-6377,Logn
{Q9W8-E7R6T5Y4-U3I2O1P0},13/45/2010 09:00:00,AIM0002,PC-6377,Logon
{Z1Z1-Z1Z1Z1Z1-Z1Z1Z1Z1},01/05/2010 09:30:00,ZZZ9999,PC-0001,Logon
{K1K1-K1K1K1K1-K1K1K1K1},01/05/2010 10:00:00,AIM0002,PC-6377
"""
DEVICE_R6 = """\
id,date,user,pc,file_tree,activity
{B4C5-D6E7F8G9-H0I1J2K3},01/05/2010 23:50:00,BKN0003,PC-2104,R:\\;R:\\Secret,Connect
"""
FILE_R6 = '''\
id,date,user,pc,filename,activity,to_removable_media,from_removable_media,content
{F1F1-F1F1F1F1-F1F1F1F1},01/05/2010 23:52:00,BKN0003,PC-2104,R:\\Secret\\design.docx,File Copy,True,False,"D0-CF-11-E0 design, rotor ""final"""
{F2F2-F2F2F2F2-F2F2F2F2},01/05/2010 10:00:00,AIM0002,PC-6377,C:\\notes.txt,File Open,False,False,notes
'''
FILE_R4 = """\
id,date,user,pc,filename,content
{F3F3-F3F3F3F3-F3F3F3F3},01/05/2010 23:52:00,BKN0003,PC-2104,R:\\design.docx,"D0-CF-11-E0 design, rotor"
"""
EMAIL_R6 = """\
id,date,user,pc,to,cc,bcc,from,activity,size,attachments,content
{E1E1-E1E1E1E1-E1E1E1E1},01/05/2010 23:55:00,BKN0003,PC-2104,bob.ng@gmail.com;Ava.Iris.Moss@dtaa.com,,,bob.ng@gmail.com,Send,25840,C:\\Secret\\design.docx(194812);C:\\x.pdf(100),"rotor, design ""final"" specs"
{E2E2-E2E2E2E2-E2E2E2E2},01/04/2010 09:00:00,AIM0002,PC-6377,Ava.Iris.Moss@dtaa.com,,,Bob.Kai.Ng@dtaa.com,View,1200,,hello
"""
EMAIL_R4 = """\
id,date,user,pc,to,cc,bcc,from,size,attachments,content
{E3E3-E3E3E3E3-E3E3E3E3},01/05/2010 23:55:00,BKN0003,PC-2104,bob.ng@gmail.com,Ava.Iris.Moss@dtaa.com,,Bob.Kai.Ng@dtaa.com,25840,2,"rotor, design"
"""
HTTP_R6 = """\
id,date,user,pc,url,activity,content
{H1H1-H1H1H1H1-H1H1H1H1},01/05/2010 23:58:00,BKN0003,PC-2104,http://www.dropbox.com/upload/design.docx,WWW Upload,"rotor, design"
{H2H2-H2H2H2H2-H2H2H2H2},01/04/2010 12:00:00,AIM0002,PC-6377,http://news.example.com/a.html,WWW Visit,news
"""
HTTP_R4 = """\
id,date,user,pc,url,content
{H3H3-H3H3H3H3-H3H3H3H3},01/05/2010 23:58:00,BKN0003,PC-2104,http://www.dropbox.com/,"rotor, design"
"""
PSYCHOMETRIC = "employee_name,user_id,O,C,E,A,N\nAva Iris Moss,AIM0002,40,39,36,19,40\n"


def _release(root: Path, r6: bool = True) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "LDAP").mkdir()
    (root / "LDAP" / "2010-01.csv").write_text(LDAP_JAN)
    (root / "LDAP" / "2010-02.csv").write_text(LDAP_FEB)
    (root / "logon.csv").write_text(LOGON)
    (root / "device.csv").write_text(
        DEVICE_R6 if r6 else DEVICE_R6.replace("file_tree,", "").replace("R:\\;R:\\Secret,", "")
    )
    (root / "file.csv").write_text(FILE_R6 if r6 else FILE_R4)
    (root / "email.csv").write_text(EMAIL_R6 if r6 else EMAIL_R4)
    (root / "http.csv").write_text(HTTP_R6 if r6 else HTTP_R4)
    (root / "psychometric.csv").write_text(PSYCHOMETRIC)
    (root / "insiderwatch.toml").write_text(SITE)
    return root


def _ingest(root: Path, store: Path | None, gate=None):
    config = config_for_logs(root)
    staged = stage(root, "auto", root.parent / f"{root.name}-staged", config)
    report = ingest(staged.folder, EventStore(store) if store else None, config, AS_OF, gate=gate)
    return staged, report


def test_r6_records_map_onto_the_canonical_sources(tmp_path: Path, gate) -> None:
    root = _release(tmp_path / "r6")
    assert detect_format(root) == "cert"
    staged, report = _ingest(root, tmp_path / "store", gate)
    assert staged.vendor_rows == {
        "logon.csv": 8, "device.csv": 1, "file.csv": 2, "email.csv": 2, "http.csv": 2
    }  # fmt: skip
    assert report.errors == []
    for source in ("logon", "device", "file_access", "mail", "web"):
        counts = [c for c in report.counts if c.source == source]
        assert (
            sum(c.read for c in counts)
            == staged.vendor_rows[
                {"file_access": "file.csv", "mail": "email.csv", "web": "http.csv"}.get(
                    source, f"{source}.csv"
                )
            ]
        )
        assert all(c.reconciles for c in counts)
    store = EventStore(tmp_path / "store")
    files = store.scan("file_access").collect().sort("timestamp")
    assert files.select("user", "action", "destination", "path").rows() == [
        ("AIM0002", "open", "local", "C:\\notes.txt"),
        ("BKN0003", "copy", "removable", "R:\\Secret\\design.docx"),
    ]
    # CERT time is local: 23:52 in New York is 04:52 UTC the next day, still local 2010-01-05.
    copy = files.filter(pl.col("action") == "copy").row(0, named=True)
    assert copy["timestamp"].isoformat() == "2010-01-06T04:52:00+00:00"
    assert copy["local_date"] == date(2010, 1, 5)
    assert copy["source_file"] == "file.csv" and copy["source_line"] == 2

    web = store.scan("web").collect().sort("timestamp")
    assert web["action"].to_list() == ["visit", "upload"]
    device = store.scan("device").collect()
    assert device.select("activity", "device_class").row(0) == ("connect", "usb_storage")

    mail = store.scan("mail").collect().sort("timestamp")
    view, sent = mail.row(0, named=True), mail.row(1, named=True)
    assert (view["direction"], view["user"]) == ("inbound", "AIM0002")
    assert sent["direction"] == "outbound"
    # Sent from a private account: the roster learnt it from email.csv, so it is Bob's.
    assert sent["user"] == "BKN0003"
    assert sent["recipients"] == ["bob.ng@gmail.com", "Ava.Iris.Moss@dtaa.com"]
    assert sent["attachments"] == 2
    assert sent["attachment_names"] == ["design.docx", "x.pdf"]
    assert sent["attachment_bytes"] == 194912
    assert sent["body"] == 'rotor, design "final" specs'


def test_the_ldap_snapshots_become_the_roster(tmp_path: Path) -> None:
    root = _release(tmp_path / "r6")
    staged, _ = _ingest(root, None)
    roster = pl.read_csv(staged.folder / "hr" / "employees.csv", infer_schema=False)
    rows = {r["user"]: r for r in roster.iter_rows(named=True)}
    assert set(rows) == {"CEL0001", "AIM0002", "BKN0003"}
    ava, bob, boss = rows["AIM0002"], rows["BKN0003"], rows["CEL0001"]
    assert ava["supervisor"] == "CEL0001" and boss["supervisor"] is None
    assert ava["department"] == "3 - Assembly"
    assert boss["department"] == "1 - Executive"  # no department: the functional unit
    assert ava["hire_date"] == "2010-01-01" and ava["last_day"] is None
    assert bob["last_day"] == "2010-01-31"  # missing from the February snapshot
    assert bob["personal_emails"] == "bob.ng@gmail.com"
    assert ava["personal_emails"] is None


def _leaver_working_into_the_next_month(root: Path) -> Path:
    """Bob is last listed in January and works into February, as people leaving mid-month do
    in the published releases; Ava, still listed, works in March."""
    _release(root)
    days = [f"02/{d:02d}/2010" for d in (1, 2, 3, 4, 5, 8, 9, 10)]
    more = [f"{{L{i:03d}-AAAAAAAA-BBBBBBBB}},{d} 09:0{i % 10}:00,BKN0003,PC-2104,Logon"
            for i, d in enumerate(days)]  # fmt: skip
    more.append("{L999-AAAAAAAA-BBBBBBBB},03/02/2010 09:00:00,AIM0002,PC-6377,Logon")
    clean = LOGON.splitlines()[:5]  # the header and the well-formed records
    (root / "logon.csv").write_text("\n".join(clean + more) + "\n")
    return root


def test_a_last_day_from_the_ldap_snapshots_is_inferred_from_the_next_month_s_work(
    tmp_path: Path,
) -> None:
    staged, _ = _ingest(_leaver_working_into_the_next_month(tmp_path / "r6"), None)
    roster = pl.read_csv(staged.folder / "hr" / "employees.csv", infer_schema=False)
    rows = {r["user"]: r for r in roster.iter_rows(named=True)}
    bob, ava = rows["BKN0003"], rows["AIM0002"]
    # Not the end of his last listed month (January 31): his last day at work in February.
    assert (bob["last_day"], bob["last_day_source"]) == ("2010-02-10", "inferred")
    assert (ava["last_day"], ava["last_day_source"]) == (None, None)


def test_a_leaver_working_into_the_month_after_their_last_listing_raises_no_after_last_day(
    tmp_path: Path,
) -> None:
    """Detection over the release: Bob's February work is inside his inferred last day, and
    an inferred day never raises activity after the last day; an HR-recorded one still does."""
    root = _leaver_working_into_the_next_month(tmp_path / "r6")
    store = tmp_path / "store"
    result = CliRunner().invoke(
        app, ["run", "--logs", str(root), "--store", str(store), "--format", "cert"]
    )
    assert result.exit_code == 0, result.output
    db = Database(default_url(store))
    fired = db.query("SELECT DISTINCT user_id, detector FROM findings")
    db.close()
    assert ("BKN0003", "activity_after_last_day") not in fired
    assert all(detector != "activity_after_last_day" for _, detector in fired), fired


def test_r4_layout_is_read_too(tmp_path: Path) -> None:
    root = _release(tmp_path / "r4", r6=False)
    _, report = _ingest(root, tmp_path / "store")
    assert report.errors == []
    store = EventStore(tmp_path / "store")
    files = store.scan("file_access").collect()
    # r4's file.csv lists copies to removable media only.
    assert files.select("action", "destination").rows() == [("copy", "removable")]
    assert store.scan("web").collect()["action"].to_list() == ["visit"]
    mail = store.scan("mail").collect().row(0, named=True)
    assert (mail["direction"], mail["user"], mail["attachments"]) == ("outbound", "BKN0003", 2)
    assert mail["cc"] == ["Ava.Iris.Moss@dtaa.com"] and mail["attachment_names"] == []


def test_bad_cert_records_are_quarantined_with_the_cert_file_and_line(tmp_path: Path) -> None:
    root = _release(tmp_path / "r6")
    _, report = _ingest(root, tmp_path / "store")
    quarantine = (
        EventStore(tmp_path / "store")
        .scan("logon", area="quarantine")
        .collect()
        .sort("source_line")
        .select("source_file", "source_line", "reason")
    )
    assert quarantine.rows() == [
        ("logon.csv", 6, "unknown activity 'Logn'"),
        ("logon.csv", 7, "unparseable timestamp '13/45/2010 09:00:00'"),
        ("logon.csv", 8, "unknown user 'ZZZ9999' (not in the roster)"),
        ("logon.csv", 9, "expected 5 fields, found 4"),
    ]
    logon = [c for c in report.counts if c.source == "logon"]
    assert sum(c.read for c in logon) == 8
    assert sum(c.stored for c in logon) == 4 and sum(c.quarantined for c in logon) == 4
    # A logon without its logoff (Bob, both days) is kept: CERT leaves some out on purpose.
    stored = EventStore(tmp_path / "store").scan("logon").collect()
    assert stored.filter(pl.col("user") == "BKN0003")["activity"].to_list() == ["logon", "logon"]


def test_a_file_that_is_not_cert_fails_naming_the_file_and_line(tmp_path: Path) -> None:
    root = _release(tmp_path / "r6")
    (root / "http.csv").write_text("timestamp,user,url\n2010-01-04,AIM0002,http://x/\n")
    with pytest.raises(FileError, match=r"^http\.csv:1: not a CERT http\.csv header"):
        _ingest(root, None)


def test_ldap_problems_fail_naming_the_file_and_line(tmp_path: Path) -> None:
    root = _release(tmp_path / "r6")
    (root / "LDAP" / "2010-02.csv").write_text(LDAP_FEB.replace("Calvin Edan Love\n", "Nobody\n"))
    with pytest.raises(FileError, match=r"^LDAP/2010-02\.csv:3: supervisor 'Nobody' is not listed"):
        _ingest(root, None)
    (root / "LDAP" / "2010-02.csv").write_text(LDAP_FEB)
    (root / "LDAP" / "notes.txt").write_text("x")
    with pytest.raises(FileError, match=r"must be named YYYY-MM\.csv"):
        _ingest(root, None)


def test_the_format_is_told_from_the_files(tmp_path: Path) -> None:
    assert detect_format(SAMPLE_LOGS) == "canonical"
    assert detect_format(_release(tmp_path / "r6")) == "cert"
    both = _release(tmp_path / "both")
    (both / "logon").mkdir()
    with pytest.raises(FileError, match="more than one format"):
        detect_format(both)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileError, match="cannot tell the format"):
        detect_format(tmp_path / "empty")


def test_blocks_give_the_same_records_as_one_read(tmp_path: Path) -> None:
    """Block edges fall anywhere: inside quoted, comma-bearing content, in a multi-line field."""
    header, body = EMAIL_R6.split("\n", 1)
    body += '{E9E9-E9E9E9E9-E9E9E9E9},01/06/2010 09:00:00,AIM0002,PC-6377,a@b.com,,,Ava.Iris.Moss@dtaa.com,Send,10,,"two\nlines, ok"\n'
    path = tmp_path / "email.csv"
    path.write_text(header + "\n" + body * 50)
    whole = pl.concat(b.frame for b in iter_csv_blocks(path, "email.csv", 1 << 30))
    for size in (7, 64, 333):
        parts = list(iter_csv_blocks(path, "email.csv", size))
        assert len(parts) > 3
        assert pl.concat(p.frame for p in parts).equals(whole)
    assert whole.height == 150


def test_blocks_read_every_member_of_a_gzip_file(tmp_path: Path) -> None:
    header, body = EMAIL_R6.split("\n", 1)
    path = tmp_path / "email.csv.gz"
    plain = tmp_path / "email.csv"
    plain.write_text(header + "\n" + body * 20)
    half = len(body.splitlines()) * 10
    rows = (body * 20).splitlines(keepends=True)
    members = [header + "\n" + "".join(rows[:half]), "".join(rows[half:])]
    path.write_bytes(b"".join(gzip.compress(m.encode()) for m in members))
    whole = pl.concat(b.frame for b in iter_csv_blocks(plain, "email.csv", 1 << 30))
    for size in (64, 1 << 30):
        read = pl.concat(b.frame for b in iter_csv_blocks(path, "email.csv.gz", size))
        assert read.equals(whole)
    cut = path.read_bytes()[:-5]
    path.write_bytes(cut)
    with pytest.raises(FileError, match="truncated gzip"):
        list(iter_csv_blocks(path, "email.csv.gz", 64))


def test_blocks_of_a_gzip_file_read_in_several_pieces(tmp_path: Path) -> None:
    """A compressed file larger than one read (1 MB) comes back whole and in order, in blocks
    and as one block (None, as the M365 adapter reads)."""
    rng = random.Random(7)
    lines = ["id,content"] + [f"{i},{rng.getrandbits(256):064x}" for i in range(60_000)]
    plain, packed = tmp_path / "big.csv", tmp_path / "big.csv.gz"
    plain.write_text("\n".join(lines) + "\n")
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    assert packed.stat().st_size > 2 << 20
    whole = pl.concat(b.frame for b in iter_csv_blocks(plain, "big.csv", None))
    assert whole.height == 60_000
    for size in (None, 1 << 20, 3 << 20):
        parts = list(iter_csv_blocks(packed, "big.csv.gz", size))
        assert len(parts) > (1 if size else 0)
        assert pl.concat(p.frame for p in parts).equals(whole)


# --- generated releases: the answer key and the round trip ---------------------------------


@pytest.fixture(scope="session")
def cert_release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cert") / "r6.2"
    write_cert(SAMPLE_LOGS, out, "r6.2", seed=7)
    return out


def test_generated_release_has_the_published_layout_and_quirks(cert_release: Path) -> None:
    for cert_file in spec.EVENT_FILES:
        lines = (cert_release / cert_file.name).read_text(encoding="utf-8").splitlines()
        assert tuple(lines[0].split(",")) == cert_file.layouts[-1]
        records = list(csv.reader(io.StringIO("\n".join(lines[1:]))))
        assert all(re.fullmatch(r"\{[A-Z0-9]{4}-[A-Z0-9]{8}-[A-Z0-9]{8}\}", r[0]) for r in records)
        assert all(re.fullmatch(r"\d\d/\d\d/\d{4} \d\d:\d\d:\d\d", r[1]) for r in records)
    logon = pl.read_csv(cert_release / "logon.csv")
    counts = logon["activity"].value_counts().rows()
    assert dict(counts)["Logon"] > dict(counts)["Logoff"]  # some logoffs are missing
    email = pl.read_csv(cert_release / "email.csv", infer_schema=False)
    assert email["to"].str.contains(";").any()
    assert email["content"].str.contains(",").any() and email["content"].str.contains('"').any()
    assert sorted(p.name for p in (cert_release / "LDAP").iterdir()) == [
        "2024-04.csv", "2024-05.csv", "2024-06.csv"
    ]  # fmt: skip


def test_the_answer_key_gives_labels_per_scenario(cert_release: Path) -> None:
    labels, warnings = read_answers(cert_release / "answers")
    assert warnings == []
    truth = pl.read_csv(SAMPLE_LOGS / "labels.csv", try_parse_dates=True)
    names = pl.read_csv(cert_release / "answers" / "scenario_names.csv", infer_schema=False)
    expected = (
        truth.join(names, left_on="scenario", right_on="name")
        .select("user", scenario="scenario_right", day="date")
        .unique()
    )
    # Every labelled day with a record in CERT's files is in the key (print jobs are not).
    got = set(labels.rows())
    assert got <= set(expected.rows())
    assert len(got) >= 0.8 * expected.height
    assert labels["scenario"].n_unique() == 6
    # The key lists one release; asking for another fails naming what it has.
    with pytest.raises(FileError, match=r"no insiders of dataset 'r4\.2'"):
        read_answers(cert_release / "answers", "r4.2")


@pytest.mark.slow
def test_a_generated_incident_in_cert_format_is_detected_by_the_daily_run(
    cert_release: Path, tmp_path: Path
) -> None:
    runner = CliRunner()
    store = tmp_path / "store"
    result = runner.invoke(
        app, ["run", "--logs", str(cert_release), "--store", str(store), "--format", "cert"]
    )
    assert result.exit_code == 0, result.output
    assert "cert format" in result.output
    assert not list(store.glob(".staging-*")), "the staged copy is removed after the run"
    quarantine = EventStore(store).scan("logon", area="quarantine").collect()
    assert set(quarantine["source_file"]) == {"logon.csv"}  # the vendor file, not the staged one
    result = runner.invoke(
        app, ["evaluate", "--cert-answers", str(cert_release / "answers"), "--store", str(store)]
    )
    assert result.exit_code == 0, result.output
    rows = {
        line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]]
        for line in result.output.splitlines()
        if line.startswith("│")
    }
    assert set(rows) == {"all", "1", "2", "3", "4", "5", "6"}
    detected, insiders = (int(x) for x in rows["all"][0].split("/"))
    assert insiders == 6 and detected >= 4, result.output
    assert float(rows["all"][4]) >= 0.8, result.output  # precision
    # The USB theft after hours survives the trip through CERT's device and file logs.
    names = pl.read_csv(cert_release / "answers" / "scenario_names.csv", infer_schema=False)
    usb = names.filter(pl.col("name") == "usb_after_hours")["scenario"].item()
    assert rows[usb][0] == "1/1", result.output


def test_samples_cert_writes_the_r4_layout_and_it_stages_whole(tmp_path: Path) -> None:
    out = tmp_path / "r4.2"
    result = CliRunner().invoke(
        app, ["samples", "cert", "--out", str(out), "--release", "r4.2", "--seed", "3"]
    )
    assert result.exit_code == 0, result.output
    for cert_file in spec.EVENT_FILES:
        header = (out / cert_file.name).read_text(encoding="utf-8").split("\n", 1)[0]
        assert tuple(header.split(",")) == cert_file.layouts[0]
    # r4 has no web activity, no received mail, and only removable-media copies in file.csv.
    staged = stage(out, "auto", tmp_path / "staged", config_for_logs(out))
    assert staged.format == "cert" and staged.reconciles
    assert staged.staged == sum(staged.vendor_rows.values()) > 0
    web = pl.read_parquet(tmp_path / "staged" / "web")
    assert set(web["action"]) == {"visit"}
    files = pl.read_parquet(tmp_path / "staged" / "file_access")
    assert set(files["destination"]) == {"removable"}
    mail = pl.read_parquet(tmp_path / "staged" / "mail")
    assert set(mail["direction"]) == {"outbound"}
