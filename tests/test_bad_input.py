"""A catalogue of bad input: each case pins the exact outcome and that the counts reconcile."""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from datetime import date

import polars as pl
import pytest

from tests.conftest import (
    FILE_HEADER,
    LOGON_HEADER,
    assert_reconciles,
    csv_text,
    file_rows,
    logon_rows,
    stored,
)

DAY = date(2024, 4, 1)
GOOD = 40  # enough good rows that one bad row stays under the quality gate's 5% share


@dataclass
class Quarantined:
    line: int
    reason: str


@dataclass
class Fails:
    message: str


@dataclass
class Case:
    id: str
    source: str
    files: dict[str, str | bytes]
    outcome: Quarantined | Fails | None
    stored: int
    duplicates: int = 0
    warning: str | None = None


def logon_file(extra: list[str], header: str = LOGON_HEADER) -> str:
    return csv_text(header, [*logon_rows(GOOD), *extra])


def access_file(extra: list[str]) -> str:
    return csv_text(FILE_HEADER, [*file_rows(GOOD), *extra])


LOGON = "logon/2024-04-01.csv"
ACCESS = "file_access/2024-04-01.csv"
BAD_LINE = GOOD + 2  # header is line 1, good rows are lines 2..41


def _corrupted(gz: bytes) -> bytes:
    """A gzip stream with its deflate data overwritten just past the header."""
    return gz[:10] + bytes([0xFF] * 8) + gz[18:]


CASES = [
    Case(
        "missing_column",
        "logon",
        {
            LOGON: csv_text(
                "timestamp,host,activity,remote",
                [
                    r.replace(",u1,", ",").replace(",u2,", ",").replace(",u3,", ",")
                    for r in logon_rows(3)
                ],
            )
        },
        Fails("logon/2024-04-01.csv:1: missing required column(s): user"),
        0,
    ),
    Case(
        "extra_column",
        "logon",
        {LOGON: csv_text(LOGON_HEADER + ",colour", [r + ",blue" for r in logon_rows(GOOD)])},
        None,
        GOOD,
        warning="logon/2024-04-01.csv: unknown column 'colour' ignored",
    ),
    Case(
        "wrong_type",
        "file_access",
        {ACCESS: access_file(["2024-04-01 18:00:00,u1,PC-1,read,\\\\fs01\\a.txt,abc,share,plm,"])},
        Quarantined(BAD_LINE, "bytes is not an integer: 'abc'"),
        GOOD,
    ),
    Case(
        "unparseable_timestamp",
        "logon",
        {LOGON: logon_file(["2024-04-01 25:61:00,u1,PC-1,logon,false"])},
        Quarantined(BAD_LINE, "unparseable timestamp '2024-04-01 25:61:00'"),
        GOOD,
    ),
    Case(
        "empty_file",
        "logon",
        {LOGON: "\n"},
        Fails("logon/2024-04-01.csv:1: no header line: the first line is blank"),
        0,
    ),
    Case(
        "zero_byte_file",
        "logon",
        {LOGON: b""},
        Fails("logon/2024-04-01.csv:1: file is empty (0 bytes): expected at least a header line"),
        0,
    ),
    Case(
        "truncated_gzip",
        "logon",
        {LOGON + ".gz": gzip.compress(logon_file([]).encode())[:-30]},
        Fails("truncated gzip: the stream ends before its end marker"),
        0,
    ),
    Case(
        "corrupt_gzip",
        "logon",
        {LOGON + ".gz": _corrupted(gzip.compress(logon_file([]).encode()))},
        Fails("corrupt gzip data"),
        0,
    ),
    Case(
        "duplicate_rows",
        "logon",
        {LOGON: logon_file([logon_rows(1)[0], logon_rows(2)[1]])},
        None,
        GOOD,
        duplicates=2,
    ),
    Case(
        "unknown_user",
        "logon",
        {LOGON: logon_file(["2024-04-01 18:00:00,zz999,PC-9,logon,false"])},
        Quarantined(BAD_LINE, "unknown user 'zz999' (not in the roster)"),
        GOOD,
    ),
    Case(
        # Reasons from typing, from the roster and from the day, in that order, on one row.
        "three_reasons",
        "file_access",
        {ACCESS: access_file(["2024-04-02 18:00:00,zz999,PC-1,read,\\\\fs01\\a.txt,-5,,,"])},
        Quarantined(
            BAD_LINE,
            "bytes is negative: -5; unknown user 'zz999' (not in the roster); "
            "timestamp falls on 2024-04-02, outside the file's day 2024-04-01",
        ),
        GOOD,
    ),
    Case(
        "future_date",
        "logon",
        {LOGON: logon_file(["2030-01-01 09:00:00,u1,PC-1,logon,false"])},
        Quarantined(
            BAD_LINE,
            "timestamp 2030-01-01 is after the run's as-of day 2024-04-30; "
            "timestamp falls on 2030-01-01, outside the file's day 2024-04-01",
        ),
        GOOD,
    ),
    Case(
        "negative_bytes",
        "file_access",
        {ACCESS: access_file(["2024-04-01 18:00:00,u1,PC-1,read,\\\\fs01\\a.txt,-5,share,plm,"])},
        Quarantined(BAD_LINE, "bytes is negative: -5"),
        GOOD,
    ),
    Case(
        "unknown_enum",
        "file_access",
        {ACCESS: access_file(["2024-04-01 18:00:00,u1,PC-1,steal,\\\\fs01\\a.txt,5,share,plm,"])},
        Quarantined(BAD_LINE, "unknown action 'steal'"),
        GOOD,
    ),
    Case(
        "unknown_classification",
        "file_access",
        {
            ACCESS: access_file(
                ["2024-04-01 18:00:00,u1,PC-1,read,\\\\fs01\\a.txt,5,share,plm,ultra"]
            )
        },
        Quarantined(BAD_LINE, "unknown classification 'ultra'"),
        GOOD,
    ),
    Case(
        "mixed_encodings",
        "file_access",
        {
            ACCESS: access_file([]).encode("utf-8")
            + "2024-04-01 18:00:00,u1,PC-1,read,\\\\fs01\\設計図.dwg,5,share,plm,極秘\n".encode(
                "cp932"
            )
        },
        Quarantined(BAD_LINE, "line is CP932 in a UTF-8 file (mixed encodings)"),
        GOOD,
    ),
    Case("header_only", "logon", {LOGON: LOGON_HEADER + "\n"}, None, 0),
    Case(
        "megabyte_field",
        "file_access",
        {ACCESS: access_file([f"2024-04-01 18:00:00,u1,PC-1,read,{'x' * 1_000_000},5,,,"])},
        Quarantined(BAD_LINE, "path longer than 4096 characters"),
        GOOD,
    ),
    Case(
        # One character over the limit: the check for length runs on this column.
        "one_character_too_long",
        "file_access",
        {ACCESS: access_file([f"2024-04-01 18:00:00,u1,PC-1,read,{'x' * 4097},5,,,"])},
        Quarantined(BAD_LINE, "path longer than 4096 characters"),
        GOOD,
    ),
    Case(
        # At the limit in characters, three times over it in bytes: limits count characters.
        "at_the_limit_in_kanji",
        "file_access",
        {ACCESS: access_file([f"2024-04-01 18:00:00,u1,PC-1,read,{'設' * 4096},5,,,"])},
        None,
        GOOD + 1,
    ),
    Case(
        "too_many_fields",
        "logon",
        {LOGON: logon_file(["2024-04-01 18:00:00,u1,PC-1,logon,false,surplus"])},
        Quarantined(BAD_LINE, "expected 5 fields, found 6"),
        GOOD,
    ),
    Case(
        "too_few_fields",
        "logon",
        {LOGON: logon_file(["2024-04-01 18:00:00,u1,logon,false"])},
        Quarantined(BAD_LINE, "expected 5 fields, found 4"),
        GOOD,
    ),
    Case(
        # The short record's missing comma is made up by a quoted comma in the next one: the
        # file's comma count alone would let the short record through, filled with nulls.
        "too_few_fields_beside_a_quoted_comma",
        "logon",
        {
            LOGON: logon_file(
                ["2024-04-01 18:00:00,u1,logon,false", '2024-04-01 18:05:00,u1,"PC,1",logon,false']
            )
        },
        Quarantined(BAD_LINE, "expected 5 fields, found 4"),
        GOOD + 1,
    ),
    Case(
        "unclosed_quote",
        "logon",
        {LOGON: logon_file(['2024-04-01 18:00:00,u1,"PC-1,logon,false'])},
        Fails("logon/2024-04-01.csv:42: cannot split the record into fields"),
        0,
    ),
    Case(
        "missing_required_value",
        "logon",
        {LOGON: logon_file(["2024-04-01 18:00:00,,PC-1,logon,false"])},
        Quarantined(BAD_LINE, "missing user"),
        GOOD,
    ),
    Case(
        "outside_file_day",
        "logon",
        {LOGON: logon_file(["2024-04-02 09:00:00,u1,PC-1,logon,false"])},
        Quarantined(BAD_LINE, "timestamp falls on 2024-04-02, outside the file's day 2024-04-01"),
        GOOD,
    ),
    Case(
        "duplicate_header_column",
        "logon",
        {LOGON: csv_text(LOGON_HEADER + ",user", [r + ",u1" for r in logon_rows(2)])},
        Fails("logon/2024-04-01.csv:1: column 'user' appears twice in the header"),
        0,
    ),
    Case(
        "malformed_json_line",
        "logon",
        {
            "logon/2024-04-01.jsonl": "\n".join(
                [
                    *(
                        f'{{"timestamp": "2024-04-01T{8 + i // 60:02d}:{i % 60:02d}:00+09:00", '
                        f'"user": "u1", "host": "PC", "activity": "logon"}}'
                        for i in range(GOOD)
                    ),
                    '{"timestamp": "2024-04-01T18:00:00", "user": "u1",',
                ]
            )
        },
        Quarantined(GOOD + 1, "malformed JSON (Expecting property name enclosed in double quotes)"),
        GOOD,
    ),
    Case(
        "corrupt_parquet",
        "logon",
        {"logon/2024-04-01.parquet": b"PAR1 this is not parquet"},
        Fails("logon/2024-04-01.parquet: cannot read Parquet"),
        0,
    ),
    Case(
        "bad_boolean",
        "logon",
        {LOGON: logon_file(["2024-04-01 18:00:00,u1,PC-1,logon,maybe"])},
        Quarantined(BAD_LINE, "remote is not true or false: 'maybe'"),
        GOOD,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_has_an_exact_outcome(case: Case, landing, run_ingest) -> None:
    report, store = run_ingest(landing(case.files))
    assert_reconciles(report, store)
    events = stored(store, case.source)
    assert events.height == case.stored
    quarantine = stored(store, case.source, area="quarantine")
    if isinstance(case.outcome, Fails):
        assert len(report.errors) == 1
        assert case.outcome.message in str(report.errors[0])
        # Nothing of that source-day is stored, and no count pretends it was read.
        assert not store.partition("events", case.source, DAY).exists()
        assert all(c.day != DAY for c in report.counts if c.source == case.source)
    else:
        assert report.errors == []
        count = report.count(case.source, DAY)
        assert count.stored == case.stored
        assert count.duplicates == case.duplicates
    if isinstance(case.outcome, Quarantined):
        assert quarantine.select("source_line", "reason").rows() == [
            (case.outcome.line, case.outcome.reason)
        ]
        assert quarantine["raw"][0]  # the record as read is kept
    elif not isinstance(case.outcome, Fails):
        assert quarantine.height == 0
    if case.warning:
        assert case.warning in report.warnings


def test_a_day_with_many_bad_rows_is_held_back_whole(landing, run_ingest) -> None:
    bad = [f"2024-04-01 18:{i:02d}:00,u1,PC-1,teleport,false" for i in range(5)]
    report, store = run_ingest(landing({LOGON: logon_file(bad)}))
    assert_reconciles(report, store)
    count = report.count("logon", DAY)
    assert count.stored == 0
    assert count.quarantined == GOOD + 5
    assert count.gate.startswith("failed: expect_column_values_to_be_in_set on activity")
    reasons = stored(store, "logon", area="quarantine")["reason"]
    assert reasons.str.contains("quality gate failed").all()
    assert not report.ok


def test_roster_problems_are_quarantined_with_reasons(landing, run_ingest) -> None:
    from tests.conftest import ROSTER

    roster = ROSTER + (
        "u1,Dup,dup@corp.example,研究開発部,engineer,u3,2019-04-01,,,false,\n"
        "u9,Nine,nine@corp.example,営業部,sales,u3,2019-04-01,2024-05-01,2024-04-01,false,\n"
        "u8,Eight,eight@corp.example,営業部,sales,u3,not-a-date,,,false,\n"
    )
    report, store = run_ingest(landing({LOGON: logon_file([])}, roster=roster))
    hr = report.count("hr", None)
    assert (hr.read, hr.stored, hr.quarantined) == (6, 3, 3)
    reasons = stored(store, "hr", area="quarantine").sort("source_line")["reason"].to_list()
    assert reasons == [
        "duplicate user id 'u1' (first at line 2)",
        "last_day is before notice_date",
        "hire_date is not a date (YYYY-MM-DD): 'not-a-date'",
    ]


def test_mail_from_an_unknown_sender_is_quarantined(landing, run_ingest) -> None:
    header = "timestamp,direction,sender,recipients,subject"
    good = [
        f"2024-04-01 10:{i:02d}:00,outbound,taro.yamada@corp.example,x@client.jp,hi"
        for i in range(GOOD)
    ]
    report, store = run_ingest(
        landing(
            {
                "mail/2024-04-01.csv": csv_text(
                    header, [*good, "2024-04-01 11:00:00,outbound,stranger@else.jp,x@client.jp,hi"]
                )
            }
        )
    )
    assert_reconciles(report, store)
    quarantine = stored(store, "mail", area="quarantine")
    assert quarantine["reason"].to_list() == ["sender 'stranger@else.jp' is not a roster address"]


def test_mail_to_no_one_on_the_roster_is_quarantined(landing, run_ingest) -> None:
    header = "timestamp,direction,sender,recipients,cc,subject"
    good = [
        f"2024-04-01 10:{i:02d}:00,inbound,x@client.jp,taro.yamada@corp.example,,hi"
        for i in range(GOOD)
    ]
    strays = [
        "2024-04-01 11:00:00,inbound,x@client.jp,y@client.jp,z@else.jp,hi",
        "2024-04-01 11:01:00,inbound,x@client.jp,y@client.jp,HANAKO.SATO@corp.example,cc'd",
    ]
    report, store = run_ingest(landing({"mail/2024-04-01.csv": csv_text(header, good + strays)}))
    assert_reconciles(report, store)
    quarantine = stored(store, "mail", area="quarantine")
    assert quarantine["reason"].to_list() == ["no recipient is a roster address"]
    assert quarantine["source_line"].to_list() == [GOOD + 2]
    assert stored(store, "mail").filter(pl.col("subject") == "cc'd")["user"].to_list() == ["u3"]


def test_mail_copies_are_dropped_wherever_they_sit_and_the_first_is_kept(
    landing, run_ingest
) -> None:
    """A mail's person is drawn from its addresses, so copies of a mail land on one person
    and time, however far apart they are in the file; mail at the same time that differs in
    any value is kept."""
    header = "timestamp,direction,sender,recipients,subject"
    same_time = "2024-04-01 10:00:00"
    rows = [
        f"{same_time},outbound,taro.yamada@corp.example,x@client.jp,plan",  # line 2
        f"{same_time},outbound,taro.yamada@corp.example,x@client.jp,Plan",  # differs: kept
        f"{same_time},outbound,taro.yamada@corp.example,y@client.jp,plan",  # differs: kept
        *[
            f"2024-04-01 11:{i:02d}:00,outbound,taro.yamada@corp.example,x@client.jp,hi"
            for i in range(GOOD)
        ],
        f"{same_time},outbound,taro.yamada@corp.example,x@client.jp,plan",  # copy of line 2
        f"{same_time},outbound,taro.yamada@corp.example,x@client.jp,plan",  # and another
    ]
    report, store = run_ingest(landing({"mail/2024-04-01.csv": csv_text(header, rows)}))
    assert_reconciles(report, store)
    count = report.count("mail", DAY)
    assert (count.read, count.stored, count.duplicates) == (GOOD + 5, GOOD + 3, 2)
    at_ten = stored(store, "mail").filter(pl.col("timestamp").dt.hour() == 1)  # 10:00 JST
    assert sorted(at_ten["source_line"].to_list()) == [2, 3, 4]
    assert sorted(at_ten["subject"].to_list()) == ["Plan", "plan", "plan"]
