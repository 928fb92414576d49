"""Detection split over shards of people gives exactly the single-process results."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest

from detectors.settings import load_tuning
from insiderwatch.config import config_for_logs
from insiderwatch.detect import MODEL_SCHEMA, empty_findings
from insiderwatch.pipeline import (
    _read_days,
    baselines_shard,
    combine_shards,
    detect_shard,
    fit_shard_models,
    shard_folder,
    shard_of,
    shard_users,
)
from insiderwatch.scoring import ALERT_SCHEMA
from insiderwatch.store import EventStore

from .conftest import REPORT_START, SAMPLE_LOGS

# Three working days of the range the session's reported store was detected over (Mon–Wed).
START, END = REPORT_START, REPORT_START + timedelta(days=2)

RESULTS = {
    "alerts": (ALERT_SCHEMA, ["alert_date", "user"]),
    "findings": (empty_findings().schema, ["local_date", "user", "detector", "reason"]),
    "model": (MODEL_SCHEMA, ["local_date", "user"]),
}


def results(store: EventStore) -> dict[str, pl.DataFrame]:
    return {
        kind: _read_days(store, kind, START, END, schema).sort(order)
        for kind, (schema, order) in RESULTS.items()
    }


def run_sharded(store: EventStore, shards: int) -> pl.DataFrame:
    tuning, config = load_tuning(), config_for_logs(SAMPLE_LOGS)
    span = (START, END)
    for shard in range(shards):
        baselines_shard(store, *span, tuning, shard, shards)
    fit_shard_models(store, *span, tuning, shards)
    for shard in reversed(range(shards)):  # the order shards finish in does not matter
        detect_shard(store, *span, config, tuning, shard, shards)
    return combine_shards(store, *span, tuning, shards)


@pytest.mark.parametrize(("shards", "models"), [(3, "kept"), (2, "fitted")])
def test_sharded_detection_gives_the_single_process_results(
    reported_store: Path, tmp_path: Path, shards: int, models: str
) -> None:
    """With the range's models kept, the shards read no training rows; without, they read
    them and the models are fitted on all of them."""
    single = results(EventStore(reported_store))
    assert single["alerts"].height >= 3 and single["model"].height > 300
    root = tmp_path / "store"
    shutil.copytree(reported_store, root)
    store = EventStore(root)
    for kind in RESULTS:
        shutil.rmtree(root / "results" / kind)
    if models == "fitted":
        shutil.rmtree(root / "models")

    alerts = run_sharded(store, shards)

    sharded = results(store)
    for kind, frame in single.items():
        assert sharded[kind].equals(frame), kind
    assert alerts.sort("alert_date", "rank").equals(single["alerts"].sort("alert_date", "rank"))
    assert not shard_folder(store, START, END, shards).exists()
    assert (root / "models").exists()  # fitted again and kept, or read as kept


def test_every_person_is_in_exactly_one_shard(reported_store: Path) -> None:
    store, tuning = EventStore(reported_store), load_tuning()
    parts = [shard_users(store, START, END, tuning, s, 4) for s in range(4)]
    everyone = [u for part in parts for u in part]
    roster = pl.read_parquet(store.roster_path())["user"].to_list()
    assert len(everyone) == len(set(everyone)) >= len(roster)
    assert set(roster) <= set(everyone)
    assert all(part for part in parts), "a shard of the sample organisation is empty"
    # The shard is a function of the id alone (CRC-32), the same on every run and machine;
    # Python's salted hash() would put people in different shards on different workers.
    assert [shard_of("u0001", 4), shard_of("alice", 7)] == [2, 5]
