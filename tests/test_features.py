"""Stored user-day features are rebuilt when what they were computed from changes."""

from __future__ import annotations

from datetime import date

import polars as pl

from insiderwatch.config import load_config
from insiderwatch.features import USER_DAY, ensure_features
from insiderwatch.ingest import ingest
from insiderwatch.store import EventStore

DAY = date(2024, 4, 2)
MAIL = (
    "timestamp,direction,sender,recipients,subject,attachments,attachment_names\n"
    "2024-04-02 12:00:00,outbound,taro.yamada@corp.example,taro@home.example,"
    "SAKURA review,1,review.pptx\n"
)


def features(store: EventStore) -> dict:
    frame = pl.read_parquet(store.partition("features", USER_DAY, DAY))
    return frame.filter(pl.col("user") == "u1").row(0, named=True)


def test_features_follow_config_roster_and_events(landing, tmp_path) -> None:
    logs = landing({"mail/2024-04-02.csv": MAIL})
    store = EventStore(tmp_path / "store")
    config = load_config()
    config = config.model_copy(
        update={"site": config.site.model_copy(update={"internal_domains": ("corp.example",)})}
    )
    ingest(logs, store, config, as_of=DAY)

    assert ensure_features(store, [DAY], config) == [DAY]
    assert ensure_features(store, [DAY], config) == []  # nothing changed
    assert features(store)["technical_mails"] == 0
    assert features(store)["personal_mails"] == 0

    named = config.model_copy(
        update={"lists": config.lists.model_copy(update={"code_names": ("SAKURA",)})}
    )
    assert ensure_features(store, [DAY], named) == [DAY]
    assert features(store)["technical_mails"] == 1

    roster = pl.read_parquet(store.roster_path()).with_columns(
        personal_emails=pl.when(pl.col("user") == "u1")
        .then(pl.lit(["taro@home.example"]))
        .otherwise(pl.col("personal_emails"))
    )
    store.write_roster(roster)
    assert ensure_features(store, [DAY], named) == [DAY]
    assert features(store)["personal_mails"] == 1

    mail = store.partition("events", "mail", DAY)
    pl.read_parquet(mail).head(0).write_parquet(mail)  # the day's mail re-ingested: none left
    assert ensure_features(store, [DAY], named) == [DAY]
    assert pl.read_parquet(store.partition("features", USER_DAY, DAY)).height == 0


def test_kept_baselines_equal_a_fresh_computation_and_follow_their_inputs(
    reported_store, tmp_path
) -> None:
    import shutil
    from datetime import timedelta

    from detectors.settings import load_tuning
    from insiderwatch.features import (
        BASELINES,
        INPUTS_FILE,
        KEY,
        compute_baselines,
        ensure_baselines,
    )
    from insiderwatch.store import io_paths

    from .conftest import REPORT_START

    root = tmp_path / "store"
    shutil.copytree(reported_store, root)
    store = EventStore(root)
    b = load_tuning().baseline
    settings = (b.window_days, b.min_history_days, b.min_peer_size)
    days = [REPORT_START + timedelta(days=k) for k in range(3)]

    # The detection run kept these days' baselines, computed in one pass over its whole
    # range; computing the three days alone gives the same rows.
    kept = pl.read_parquet(io_paths(store.existing("features", BASELINES, days))).sort(KEY)
    fresh = compute_baselines(store, days[0], days[-1], *settings).sort(KEY)
    assert kept.height > 100 and kept.equals(fresh)
    assert ensure_baselines(store, days, *settings) == []

    # Features rebuilt from other inputs within two windows before a day make its kept
    # baselines stale; a day further back does not.
    far = days[0] - timedelta(days=2 * b.window_days + 1)
    store.partition("features", USER_DAY, far, INPUTS_FILE).write_text("rebuilt")
    assert ensure_baselines(store, days, *settings) == []
    near = days[0] - timedelta(days=b.window_days)
    store.partition("features", USER_DAY, near, INPUTS_FILE).write_text("rebuilt")
    assert ensure_baselines(store, days, *settings) == days
    assert (
        pl.read_parquet(io_paths(store.existing("features", BASELINES, days)))
        .sort(KEY)
        .equals(kept)
    )
