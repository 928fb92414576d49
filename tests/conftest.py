from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from insiderwatch.config import load_config
from insiderwatch.ingest import IngestReport, ingest
from insiderwatch.quality import QualityGate
from insiderwatch.store import EventStore

REPO = Path(__file__).resolve().parent.parent
SAMPLE_LOGS = REPO / "sample_logs"
AS_OF = date(2024, 4, 30)

ROSTER = """\
user,name,email,department,role,supervisor,hire_date,notice_date,last_day,priority,personal_emails
u1,山田 太郎,taro.yamada@corp.example,研究開発部,engineer,u3,2019-04-01,,,false,taro_y@gmail.com
u2,Emily Carter,emily.carter@corp.example,営業部,sales,u3,2020-10-01,2024-04-10,2024-04-26,false,
u3,佐藤 花子,hanako.sato@corp.example,研究開発部,manager,,2010-04-01,,,true,\
hanako.s@yahoo.co.jp;hs@icloud.com
"""

LOGON_HEADER = "timestamp,user,host,activity,remote"
FILE_HEADER = "timestamp,user,host,action,path,bytes,destination,system,classification"


def logon_rows(n: int, day: str = "2024-04-01") -> list[str]:
    """n distinct, valid logon rows on ``day`` (naive local timestamps)."""
    return [
        f"{day} {8 + i // 60:02d}:{i % 60:02d}:00,u{1 + i % 3},PC-{i % 3},logon,false"
        for i in range(n)
    ]


def file_rows(n: int, day: str = "2024-04-01") -> list[str]:
    return [
        f"{day} {9 + i // 60:02d}:{i % 60:02d}:00,u{1 + i % 3},PC-1,read,"
        f"\\\\fs01\\rnd\\doc{i}.docx,{1000 + i},share,plm,社外秘"
        for i in range(n)
    ]


def csv_text(header: str, rows: list[str]) -> str:
    return "\n".join([header, *rows]) + "\n"


@pytest.fixture
def landing(tmp_path: Path) -> Callable[..., Path]:
    """Make a landing folder with the test roster and the given files (path -> str | bytes)."""

    def make(files: dict[str, str | bytes], roster: str = ROSTER) -> Path:
        root = tmp_path / "landing"
        (root / "hr").mkdir(parents=True, exist_ok=True)
        (root / "hr" / "employees.csv").write_text(roster, encoding="utf-8")
        for rel, content in files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content, encoding="utf-8")
        return root

    return make


@pytest.fixture(scope="session")
def gate() -> QualityGate:
    return QualityGate()


@pytest.fixture
def run_ingest(tmp_path: Path, gate: QualityGate) -> Callable[..., tuple[IngestReport, EventStore]]:
    def run(logs: Path, **kwargs) -> tuple[IngestReport, EventStore]:
        store = EventStore(tmp_path / "store")
        kwargs.setdefault("as_of", AS_OF)
        report = ingest(logs, store, load_config(), gate=gate, **kwargs)
        return report, store

    return run


def stored(store: EventStore, source: str, area: str = "events") -> pl.DataFrame:
    return store.scan(source, area=area).collect()


def assert_reconciles(report: IngestReport, store: EventStore) -> None:
    """Counts add up, and agree with what is actually on disk."""
    for count in report.counts:
        assert count.read == count.stored + count.quarantined + count.duplicates, count
        if count.source == "hr":
            continue
        if count.day is not None:
            events = store.partition("events", count.source, count.day)
            on_disk = pl.read_parquet(events).height if events.exists() else 0
            assert on_disk == count.stored, count
        quarantine = store.partition("quarantine", count.source, count.day)
        on_disk = pl.read_parquet(quarantine).height if quarantine.exists() else 0
        assert on_disk == count.quarantined, count
