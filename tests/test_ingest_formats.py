"""Every input format and encoding lands as the same canonical rows."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, date, datetime

import polars as pl
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from insiderwatch import store as store_module
from insiderwatch.ingest import REASONS, cluster, first_copies, type_and_check
from insiderwatch.readers import byte_counts
from schemas.canonical import SOURCES
from tests.conftest import FILE_HEADER, ROSTER, assert_reconciles, csv_text, stored

ROWS = [
    # naive local time, Japanese label, a comma inside quotes, a newline inside quotes
    (
        "2024-04-01 09:00:00",
        "u1",
        "PC-1",
        "read",
        '"\\\\fs01\\rnd\\設計図, 第2版.dwg"',
        "2048",
        "share",
        "cad-vault",
        "極秘",
    ),
    (
        "2024-04-01T10:30:00+09:00",
        "u2",
        "PC-2",
        "COPY",
        '"\\\\fs01\\sales\\見積\nメモ.xlsx"',
        "10",
        "removable",
        "",
        "マル秘",
    ),
    (
        "2024-04-01T02:00:00Z",
        "u3",
        "PC-3",
        "upload",
        "\\\\fs01\\rnd\\plan.pptx",
        "",
        "cloud",
        "plm",
        "社外秘",
    ),
    (
        "2024-04-01 12:00:00.250",
        "u1",
        "PC-1",
        "open",
        "\\\\fs01\\pub\\news.pdf",
        "0",
        "local",
        "",
        "公開",
    ),
]
EXPECTED_UTC = [
    datetime(2024, 4, 1, 0, 0, tzinfo=UTC),
    datetime(2024, 4, 1, 1, 30, tzinfo=UTC),
    datetime(2024, 4, 1, 2, 0, tzinfo=UTC),
    datetime(2024, 4, 1, 3, 0, 0, 250_000, tzinfo=UTC),
]
EXPECTED_LEVELS = ["top_secret", "secret", "internal", "public"]


def canonical_csv() -> str:
    return csv_text(FILE_HEADER, [",".join(r) for r in ROWS])


def _unquote(value: str) -> str:
    return value[1:-1] if value.startswith('"') else value


def as_records() -> list[dict[str, object]]:
    names = FILE_HEADER.split(",")
    return [dict(zip(names, (_unquote(v) for v in row), strict=True)) for row in ROWS]


def check_canonical(store) -> None:
    events = stored(store, "file_access").sort("timestamp")
    assert events["timestamp"].to_list() == EXPECTED_UTC
    assert events["classification"].to_list() == EXPECTED_LEVELS
    assert events["local_date"].unique().to_list() == [date(2024, 4, 1)]
    assert events["action"].to_list() == ["read", "copy", "upload", "open"]
    assert events["bytes"].to_list() == [2048, 10, None, 0]
    assert "設計図, 第2版.dwg" in events["path"][0]
    assert "見積\nメモ" in events["path"][1]


def test_csv_utf8(landing, run_ingest) -> None:
    report, store = run_ingest(landing({"file_access/2024-04-01.csv": canonical_csv()}))
    assert report.errors == [] and report.count("file_access", date(2024, 4, 1)).stored == 4
    check_canonical(store)
    # Lines are physical lines: the second record spans two, so the third starts on line 5.
    assert stored(store, "file_access").sort("timestamp")["source_line"].to_list() == [2, 3, 5, 6]


def test_csv_utf8_with_bom(landing, run_ingest) -> None:
    data = b"\xef\xbb\xbf" + canonical_csv().encode("utf-8")
    report, store = run_ingest(landing({"file_access/2024-04-01.csv": data}))
    assert report.errors == []
    check_canonical(store)


def test_csv_cp932(landing, run_ingest) -> None:
    data = canonical_csv().encode("cp932")
    report, store = run_ingest(landing({"file_access/2024-04-01.csv": data}))
    assert report.errors == []
    check_canonical(store)


def test_csv_gz(landing, run_ingest) -> None:
    data = gzip.compress(canonical_csv().encode("utf-8"))
    report, store = run_ingest(landing({"file_access/2024-04-01.csv.gz": data}))
    assert report.errors == []
    check_canonical(store)


def test_csv_gz_of_several_members(landing, run_ingest) -> None:
    """``cat a.gz b.gz`` is one gzip file of two members (gzip reads both); zero bytes padding
    its end are skipped. The second member's rows must not be dropped."""
    header, *lines = canonical_csv().split("\n", 2)
    first, rest = lines[0] + "\n", lines[1]
    data = gzip.compress((header + "\n" + first).encode()) + gzip.compress(rest.encode())
    report, store = run_ingest(landing({"file_access/2024-04-01.csv.gz": data + b"\0" * 8}))
    assert report.errors == []
    check_canonical(store)


def test_cp932_csv_gz_with_crlf(landing, run_ingest) -> None:
    data = gzip.compress(canonical_csv().replace("\n", "\r\n").encode("cp932"))
    report, store = run_ingest(landing({"file_access/2024-04-01.csv.gz": data}))
    assert report.errors == []
    events = stored(store, "file_access")
    assert events.height == 4
    assert not events["path"].str.ends_with("\r").any()


def test_jsonl(landing, run_ingest) -> None:
    lines = []
    for record in as_records():
        record = dict(record)
        if record["bytes"]:
            record["bytes"] = int(record["bytes"])  # JSON numbers are accepted as well as text
        lines.append(json.dumps(record, ensure_ascii=False))
    report, store = run_ingest(landing({"file_access/2024-04-01.jsonl": "\n".join(lines) + "\n"}))
    assert report.errors == []
    check_canonical(store)


def test_parquet(landing, run_ingest, tmp_path) -> None:
    frame = pl.DataFrame(as_records()).with_columns(
        pl.col("bytes").replace("", None).cast(pl.Int64)
    )
    path = tmp_path / "fa.parquet"
    frame.write_parquet(path)
    report, store = run_ingest(landing({"file_access/2024-04-01.parquet": path.read_bytes()}))
    assert report.errors == []
    check_canonical(store)


def test_files_without_a_day_in_the_name_are_split_by_local_day(landing, run_ingest) -> None:
    rows = [
        "2024-04-01 23:59:59,u1,PC,logon,false",
        "2024-04-02T00:00:01+09:00,u1,PC,logoff,",
        "2024-04-01T15:30:00Z,u2,PC,logon,true",
    ]
    report, _ = run_ingest(
        landing({"logon/export.csv": csv_text("timestamp,user,host,activity,remote", rows)})
    )
    assert report.errors == []
    assert report.count("logon", date(2024, 4, 1)).stored == 1
    assert report.count("logon", date(2024, 4, 2)).stored == 2  # 15:30Z is 00:30 in Tokyo


def test_mail_is_tied_through_work_and_personal_addresses(landing, run_ingest) -> None:
    header = "timestamp,direction,sender,recipients,cc,subject,attachments"
    rows = [
        "2024-04-01 10:00,outbound,Taro.Yamada@corp.example,taro_y@gmail.com,,設計図,1",
        "2024-04-01 10:05,inbound,hs@icloud.com,x@client.jp;HANAKO.SATO@corp.example,"
        "emily.carter@corp.example,fwd,0",
        "2024-04-01 10:10,inbound,scout@bizreach.jp,emily.carter@corp.example,,スカウト,0",
        # The same person twice (work and private address), then someone else, in cc.
        "2024-04-01 10:15,outbound,emily.carter@corp.example,taro.yamada@corp.example,"
        "taro_y@gmail.com;x@client.jp;hanako.sato@corp.example,notes,0",
        "2024-04-01 10:20,outbound,emily.carter@corp.example,x@client.jp,,quote,0",
        "2024-04-01 10:25,outbound,emily.carter@corp.example,x@client.jp,HANAKO.sato@corp.example,"
        "cc,0",
    ]
    report, store = run_ingest(landing({"mail/2024-04-01.csv": csv_text(header, rows)}))
    assert report.errors == []
    mail = stored(store, "mail").sort("source_line")
    assert mail["user"].to_list() == ["u1", "u3", "u2", "u2", "u2", "u2"]
    assert mail["recipient_users"].to_list() == [
        ["u1"],
        ["u3", "u2"],
        ["u2"],
        ["u1", "u3"],
        [],
        ["u3"],
    ]
    assert mail["recipients"][1].to_list() == ["x@client.jp", "HANAKO.SATO@corp.example"]
    # Text, lists and dates are written with a dictionary; numbers and times, which rarely
    # repeat, without one.
    group = pq.ParquetFile(store.partition("events", "mail", date(2024, 4, 1))).metadata
    group = group.row_group(0)
    with_dictionary = {
        group.column(i).path_in_schema.split(".")[0]: group.column(i).has_dictionary_page
        for i in range(group.num_columns)
    }
    assert with_dictionary["sender"] and with_dictionary["recipients"]
    assert with_dictionary["local_date"]
    assert not with_dictionary["source_line"] and not with_dictionary["timestamp"]


def test_reingesting_a_day_replaces_its_partition(landing, run_ingest) -> None:
    logs = landing({"file_access/2024-04-01.csv": canonical_csv()})
    report1, store = run_ingest(logs)
    before = stored(store, "file_access")
    report2, store = run_ingest(logs)
    assert stored(store, "file_access").equals(before)
    assert report1.totals() == report2.totals()
    # A corrected file replaces the day; nothing of the old version remains.
    (logs / "file_access/2024-04-01.csv").write_text(
        csv_text(FILE_HEADER, [",".join(ROWS[3])]), encoding="utf-8"
    )
    report3, store = run_ingest(logs)
    assert stored(store, "file_access").height == 1
    assert_reconciles(report3, store)


def test_a_crash_while_writing_leaves_the_old_partition_whole(
    landing, run_ingest, monkeypatch
) -> None:
    logs = landing({"file_access/2024-04-01.csv": canonical_csv()})
    _, store = run_ingest(logs)
    before = stored(store, "file_access")

    def crash(self, path, **kwargs):
        with open(path, "wb") as fh:
            fh.write(b"PAR1 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(pl.DataFrame, "write_parquet", crash)
    with pytest.raises(OSError, match="disk full"):
        run_ingest(logs)
    monkeypatch.undo()
    assert stored(store, "file_access").equals(before)
    partition = store.partition("events", "file_access", date(2024, 4, 1)).parent
    assert [p.name for p in partition.iterdir()] == [store_module.PART]


def test_validate_mode_writes_nothing(landing, gate, tmp_path) -> None:
    from insiderwatch.config import load_config
    from insiderwatch.ingest import ingest

    logs = landing({"file_access/2024-04-01.csv": canonical_csv()})
    report = ingest(logs, None, load_config(), date(2024, 4, 30), gate=gate)
    assert report.count("file_access", date(2024, 4, 1)).stored == 4
    assert not (tmp_path / "store").exists()


# --- clustering and deduplication equal their plain polars spelling -----------------------------

_users = st.sampled_from(["u1", "u10", "u2", "ü3", None])
_stamps = st.sampled_from([datetime(2024, 4, 1, h, tzinfo=UTC) for h in (9, 10)] + [None])
_paths = st.sampled_from(["a", "b", None])
_lists = st.sampled_from([[], ["x"], ["x", "y"]])


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(_users, _stamps, _paths, _lists), max_size=30))
def test_first_copies_and_cluster_equal_unique_and_sort(rows: list) -> None:
    frame = pl.DataFrame(
        rows,
        schema={
            "user": pl.String,
            "timestamp": pl.Datetime("us", "UTC"),
            "path": pl.String,
            "to": pl.List(pl.String),
        },
        orient="row",
    ).with_row_index("line")
    subset = ["user", "timestamp", "path", "to"]
    clustered = cluster(frame)
    assert clustered.equals(frame.sort(["user", "timestamp"], maintain_order=True))
    deduped = clustered.filter(first_copies(clustered, subset))
    unique = frame.unique(subset=subset, keep="first", maintain_order=True)
    assert deduped.equals(unique.sort(["user", "timestamp"], maintain_order=True))


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=200), st.integers(1, 64))
def test_byte_counts_equal_bytes_count_across_slices(data: bytes, step: int) -> None:
    """The fast CSV path's separator and line-break counts, taken a slice at a time, equal
    Python's count over the whole text wherever the slices fall."""
    data = data.replace(b"\x01", b",").replace(b"\x02", b"\n")  # the wanted bytes, often
    assert byte_counts(data, b",\n", step) == [data.count(b","), data.count(b"\n")]


def test_sources_ingested_side_by_side_equal_one_at_a_time(gate, tmp_path) -> None:
    """Two sources at a time (the default) store the same rows and report the same counts,
    errors and warnings, in the same order, as one source at a time."""
    from insiderwatch.config import load_config
    from insiderwatch.ingest import ingest
    from insiderwatch.store import EventStore
    from tests.conftest import SAMPLE_LOGS

    day = date(2024, 6, 12)
    reports, stores = [], []
    for workers in (1, 2):
        store = EventStore(tmp_path / f"w{workers}")
        reports.append(
            ingest(SAMPLE_LOGS, store, load_config(), day, day, day, gate, workers=workers)
        )
        stores.append(store)
    one, two = reports
    assert [c.source for c in one.counts] == [c.source for c in two.counts]
    assert one.counts == two.counts and one.errors == two.errors
    assert one.warnings == two.warnings
    assert sum(c.stored for c in one.counts if c.day == day) > 1000
    for count in one.counts:
        if count.day == day:
            for area in ("events", "quarantine"):
                assert stored(stores[0], count.source, area).equals(
                    stored(stores[1], count.source, area)
                ), (count.source, area)


def test_values_are_trimmed_and_blank_values_are_missing() -> None:
    """White space around a value goes (the ideographic space too); a value that is only white
    space, or empty, is missing: null where the column may be empty, a reason where it may not."""
    source = SOURCES["file_access"]
    base = dict(zip(source.names, ["2024-04-01 09:00:00", "u1", "PC-1", "read", "p", "1",
                                   "share", "plm", "public"], strict=True))  # fmt: skip
    rows = [
        {**base, "user": " u1\t", "system": "", "host": "\u3000PC-1 "},
        {**base, "user": " \u3000 ", "system": "  "},
        {**base, "user": ""},
    ]
    checked = type_and_check(pl.DataFrame(rows), source, "Asia/Tokyo")
    assert checked["user"].to_list() == ["u1", None, None]
    assert checked["host"].to_list() == ["PC-1", "PC-1", "PC-1"]
    assert checked["system"].to_list() == [None, None, "plm"]
    assert checked[REASONS].to_list() == [[], ["missing user"], ["missing user"]]


_fields = st.sampled_from(["a", "", "b c", "x,y", 'say "hi"', "two\nlines", "末尾", " pad "])


def _csv_field(value: str) -> str:
    if any(c in value for c in ',"\n'):
        return '"' + value.replace('"', '""') + '"'
    return value


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(_fields, min_size=0, max_size=5), max_size=12))
def test_fast_csv_reader_gives_what_the_exact_reader_gives(records: list[list[str]]) -> None:
    """Whatever the records (short, long, blank, quoted commas, quotes and line breaks), the
    polars path is taken only when it reads what Python's ``csv`` module reads: the same rows,
    lines and rejects."""
    from insiderwatch.readers import _csv_slow, _read_csv, default_limits

    text = "\n".join(["h1,h2,h3", *(",".join(_csv_field(v) for v in r) for r in records)]) + "\n"
    fast = _read_csv(text.encode(), "f.csv", default_limits())
    exact = _csv_slow(text.split("\n"), {}, "f.csv", "utf-8", default_limits())
    assert fast.frame.equals(exact.frame)
    assert [(r.line, r.reason) for r in fast.rejects] == [(r.line, r.reason) for r in exact.rejects]


def test_a_last_day_says_where_it_comes_from(landing, run_ingest) -> None:
    """A last day with no source is HR's record; "inferred" is kept (any case); a source with
    no last day is dropped with a warning; an unknown source is a quarantined line."""
    header = ROSTER.splitlines()[0] + ",last_day_source"
    lines = [
        "u1,山田 太郎,taro.yamada@corp.example,研究開発部,engineer,u3,2019-04-01,,,false,,hr",
        "u2,Emily Carter,emily.carter@corp.example,営業部,sales,u3,2020-10-01,,2024-04-26,false,,",
        "u3,佐藤 花子,hanako.sato@corp.example,研究開発部,manager,,2010-04-01,,2024-05-31,true,,"
        "INFERRED",
        "u4,鈴木 健,ken.suzuki@corp.example,製造部,operator,u3,2018-04-01,,2024-05-31,false,,guess",
    ]
    logs = landing({}, roster="\n".join([header, *lines]) + "\n")
    report, store = run_ingest(logs)
    roster = pl.read_parquet(store.roster_path()).sort("user")
    assert roster.select("user", "last_day_source").rows() == [
        ("u1", None), ("u2", "hr"), ("u3", "inferred")
    ]  # fmt: skip
    assert any("last_day_source without a last_day on 1 line(s), first at line 2" in w
               for w in report.warnings), report.warnings  # fmt: skip
    quarantined = stored(store, "hr", area="quarantine")
    assert quarantined["source_line"].to_list() == [5]
    assert "last_day_source" in quarantined["reason"][0]
