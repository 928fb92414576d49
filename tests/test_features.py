"""Stored user-day features are rebuilt when what they were computed from changes."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from insiderwatch.config import Config, load_config
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


def ingested(logs, tmp_path) -> tuple[EventStore, Config]:
    """``logs`` ingested into a new store, with corp.example as the site's own domain."""
    store = EventStore(tmp_path / "store")
    config = load_config()
    config = config.model_copy(
        update={"site": config.site.model_copy(update={"internal_domains": ("corp.example",)})}
    )
    ingest(logs, store, config, as_of=DAY)
    return store, config


def test_features_follow_config_roster_and_events(landing, tmp_path) -> None:
    logs = landing({"mail/2024-04-02.csv": MAIL})
    store, config = ingested(logs, tmp_path)

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
    reported_store, tmp_path, monkeypatch
) -> None:
    import shutil
    from datetime import timedelta

    from detectors.settings import load_tuning
    from insiderwatch import features as features_module
    from insiderwatch.features import (
        BASELINE_INPUTS,
        BASELINES,
        INPUTS_FILE,
        KEY,
        TOUCHES,
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
    # A day alone is grouped over the days before it, a range uses rolling windows: the same
    # rows, to the last bit.
    for day in days:
        alone = compute_baselines(store, day, day, *settings).sort(KEY)
        assert alone.height > 30 and alone.equals(fresh.filter(pl.col("local_date") == day))
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

    # A daily run computes one day: the new-item counts of the window before it are read from
    # those days' kept baselines, and only the day's own are worked out. Someone touches an
    # item first seen a window before (not new), one seen a day longer ago, and one never seen.
    window, last = b.window_days, days[-1]
    person = kept.filter(pl.col("local_date") == last)["user"][0]

    def touch(day: date, item: str) -> None:
        path = store.partition("features", TOUCHES, day)
        old = pl.read_parquet(path)
        row = {"user": person, "local_date": day, "kind": "system", "item": item, "n": 3}
        pl.concat([old, pl.DataFrame([row], schema=old.schema)]).write_parquet(path)

    touch(last - timedelta(days=window), "seen a window before")
    touch(last - timedelta(days=window + 1), "seen a day longer ago")
    for item in ("seen a window before", "seen a day longer ago", "never seen"):
        touch(last, item)
    span = [last - timedelta(days=k) for k in range(window, -1, -1)]
    for day in span:
        shutil.rmtree(store.partition("features", BASELINES, day).parent, ignore_errors=True)
    ensure_baselines(store, span[:-1], *settings)  # one pass over the window's days

    def refuse(*args):
        raise AssertionError("two windows of touches were read")

    with monkeypatch.context() as patched:
        patched.setattr(features_module, "_window_items", refuse)
        assert ensure_baselines(store, span, *settings) == [last]
    one = pl.read_parquet(store.partition("features", BASELINES, last))
    assert one.equals(compute_baselines(store, last, last, *settings))
    mine = one.filter(pl.col("user") == person).row(0, named=True)
    assert mine["new_items"] == ["never seen", "seen a day longer ago"]
    assert (
        mine["new_systems"]
        == 2
        + kept.filter((pl.col("local_date") == last) & (pl.col("user") == person))[
            "new_systems"
        ].item()
    )
    # Not when the window's days are not among those asked for (their baselines were not
    # checked), nor when one of them is stale too: then two windows of touches are read.
    here = store.partition("features", BASELINES, last).parent
    for days_asked, stale in (([last], None), (span, last - timedelta(days=3))):
        shutil.rmtree(here)
        if stale is not None:
            store.partition("features", BASELINES, stale, BASELINE_INPUTS).write_text("other")
        with monkeypatch.context() as patched, pytest.raises(AssertionError, match="touches"):
            patched.setattr(features_module, "_window_items", refuse)
            ensure_baselines(store, days_asked, *settings)
        assert last in ensure_baselines(store, days_asked, *settings)
        assert pl.read_parquet(store.partition("features", BASELINES, last)).equals(one)


def test_kept_models_are_read_not_fitted_again_until_their_baselines_change(
    reported_store, tmp_path, monkeypatch
) -> None:
    import shutil
    from dataclasses import replace
    from datetime import timedelta

    from detectors.models.isolation_forest import DeviationForest
    from detectors.settings import load_tuning
    from insiderwatch.config import config_for_logs
    from insiderwatch.db import Database
    from insiderwatch.detect import FOREST_FILE, FORESTS, retrain_anchor
    from insiderwatch.pipeline import RESULTS, detect_range
    from insiderwatch.store import io_paths

    from .conftest import REPORT_START, SAMPLE_LOGS

    root = tmp_path / "store"
    shutil.copytree(reported_store, root)
    store = EventStore(root)
    tuning, config = load_tuning(), config_for_logs(SAMPLE_LOGS)
    days = [REPORT_START + timedelta(days=k) for k in range(3)]
    anchors = {retrain_anchor(day, tuning) for day in days}
    # The report run kept one model per retraining day of its range.
    assert all(store.partition("models", FORESTS, a, FOREST_FILE).exists() for a in anchors)

    def results(kind: str) -> pl.DataFrame:
        return pl.read_parquet(io_paths(store.existing(RESULTS, kind, days)))

    def model_scores() -> pl.DataFrame:
        return results("model")

    kept_scores = model_scores()
    assert kept_scores.height > 100
    fitted: list[int] = []
    fit = DeviationForest.fit
    monkeypatch.setattr(
        DeviationForest, "fit", lambda self, x: fitted.append(len(x)) or fit(self, x)
    )

    def detect() -> None:
        database = Database(str(tmp_path / f"alerts-{len(fitted)}.duckdb"))
        detect_range(store, database, days[0], days[-1], config, tuning, "kept-models")
        database.close()

    detect()  # the kept models are read: nothing is fitted, the scores are the same
    assert fitted == []
    assert model_scores().equals(kept_scores)
    # Read without the training days' rows: the same findings and alerts as with them.
    kept_results = {kind: results(kind) for kind in ("findings", "alerts")}
    assert kept_results["findings"].height > 10 and kept_results["alerts"].height > 0

    shutil.rmtree(root / "models")  # fitted afresh: the same scores
    detect()
    assert len(fitted) == len(anchors)
    assert model_scores().equals(kept_scores)
    assert all(results(kind).equals(frame) for kind, frame in kept_results.items())

    # Other model settings, or baselines drawn from other inputs (here a person moved to
    # another department, so the peer groups changed), mean a model fitted again.
    fitted.clear()
    detect_with = tuning
    tuning = replace(tuning, model=tuning.model.model_copy(update={"n_estimators": 60}))
    detect()
    assert len(fitted) == len(anchors)
    assert not model_scores().equals(kept_scores)
    tuning = detect_with
    detect()
    fitted.clear()
    roster = pl.read_parquet(store.roster_path())
    moved = roster["user"][0]
    roster.with_columns(
        department=pl.when(pl.col("user") == moved).then(pl.lit("法務部")).otherwise("department")
    ).write_parquet(store.roster_path())
    detect()
    assert len(fitted) == len(anchors)


def test_scored_days_alone_are_the_rows_read_with_the_training_days(reported_store) -> None:
    """With the models kept, detection reads the scored days' rows without the 35 training
    days before them; each scored row, its notice history included, is the same."""
    from datetime import timedelta

    from detectors.settings import load_tuning
    from insiderwatch.detect import evidence_rows, forests_kept

    from .conftest import REPORT_END, REPORT_START

    store, tuning = EventStore(reported_store), load_tuning()
    start, end = REPORT_START, REPORT_START + timedelta(days=3)
    assert forests_kept(store, start, end, tuning)
    alone = evidence_rows(store, start, end, tuning, training=False)
    whole = evidence_rows(store, start, end, tuning)
    assert whole["local_date"].min() == start - timedelta(days=35)
    assert alone.height > 100 and alone["local_date"].min() == start
    assert alone.equals(whole.filter(pl.col("local_date") >= start))
    # Counted on the first scored day: from the narrow rows of the days before it.
    noticed = alone.filter(
        (pl.col("local_date") == start) & (pl.col("external_attachments__after_notice_days") > 0)
    )
    assert noticed.height > 0
    # One person's rows, as a shard reads them.
    user = noticed["user"][0]
    mine = evidence_rows(store, start, end, tuning, users=[user], training=False)
    assert mine.equals(alone.filter(pl.col("user") == user))
    later = REPORT_END + timedelta(days=7)  # no model kept for that week
    assert not forests_kept(store, later, later, tuning)


OUTGOING = (
    "timestamp,direction,sender,recipients,cc,subject,attachments,attachment_names\n"
    "2024-04-02 09:00:00,outbound,taro.yamada@corp.example,rival@rival.example,,"
    "SAKURA drawings,1,sakura.dwg\n"
    "2024-04-02 10:00:00,outbound,taro.yamada@corp.example,hanako.sato@corp.example,,"
    "lunch,0,\n"
    "2024-04-02 11:00:00,inbound,someone@rival.example,taro.yamada@corp.example,,hello,0,\n"
    "2024-04-02 12:00:00,outbound,taro.yamada@corp.example,hanako.sato@corp.example,"
    "x@free.example,CAD files,2,a.dwg;b.dwg\n"
)


def test_kept_external_mail_is_the_annotated_external_mail_while_fresh(landing, tmp_path) -> None:
    """The features stage keeps the day's external mail for the mail rules; it is exactly what
    annotating the day's mail gives, and a copy from other inputs is not used."""
    from detectors.base import is_external_mail
    from insiderwatch.features import kept_external_mail, load_day_events, roster_lazy

    logs = landing({"mail/2024-04-02.csv": OUTGOING})
    store, config = ingested(logs, tmp_path)
    ensure_features(store, [DAY], config)

    def annotated(cfg) -> pl.DataFrame:
        mail = load_day_events(store, DAY, cfg, roster_lazy(store))["mail"]
        return mail.filter(is_external_mail()).collect().sort("source_line")

    kept = kept_external_mail(store, DAY, DAY, config)[DAY].collect().sort("source_line")
    assert kept.equals(annotated(config))
    assert kept["source_line"].to_list() == [2, 5]  # outbound with an external recipient
    assert kept["code_names"].to_list() == [[], []]

    named = config.model_copy(
        update={"lists": config.lists.model_copy(update={"code_names": ("SAKURA",)})}
    )
    assert kept_external_mail(store, DAY, DAY, named) == {}  # computed with other lists
    ensure_features(store, [DAY], named)
    kept = kept_external_mail(store, DAY, DAY, named)[DAY].collect().sort("source_line")
    assert kept.equals(annotated(named))
    assert kept["code_names"].to_list() == [["SAKURA"], []]


def test_annotated_mail_keeps_the_order_of_the_stored_mail() -> None:
    """Annotating a day's mail gives its rows in the order they are stored (by person, then
    time), run after run: the kept external mail and everything read from it are the same
    bytes on a rerun."""
    from datetime import UTC, datetime, timedelta

    from insiderwatch.features import annotate

    people = [f"u{k:03d}" for k in range(300)]
    start = datetime(2024, 4, 2, 0, 0, tzinfo=UTC)
    rows = [
        {
            "timestamp": start + timedelta(minutes=m),
            "direction": "outbound" if m % 3 else "inbound",
            "sender": f"{user}@corp.example",
            "recipients": [f"{user}@home.example" if m % 2 else "buyer@rival.example"],
            "cc": [],
            "bcc": [],
            "subject": "図面 review" if m % 5 == 0 else "lunch",
            "attachments": m % 2,
            "attachment_names": ["a.dwg"] if m % 2 else [],
            "attachment_bytes": 100 * (m % 2),
            "size_bytes": 1000,
            "body": "",
            "user": user,
            "recipient_users": [],
            "local_date": DAY,
            "source_file": "mail/2024-04-02.csv",
            "source_line": 2 + k * 10 + m,
        }
        for k, user in enumerate(people)
        for m in range(10)
    ]
    mail = pl.DataFrame(rows)
    roster = pl.LazyFrame(
        {"user": people[::-1], "personal_emails": [[f"{u}@home.example"] for u in people[::-1]]}
    )
    config = load_config()
    config = config.model_copy(
        update={"site": config.site.model_copy(update={"internal_domains": ("corp.example",)})}
    )
    first = annotate("mail", mail.lazy(), config, DAY, roster).collect()
    assert first["source_line"].to_list() == mail["source_line"].to_list()
    assert annotate("mail", mail.lazy(), config, DAY, roster).collect().equals(first)
    assert first["to_personal"].sum() > 0  # the roster's addresses were joined in
