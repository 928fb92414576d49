"""The daily run at company scale: 10,000 people, one day (about 5 million events) through
ingest (with the Great Expectations gate), features, rules, model, scoring and the alert store.

    uv run python benchmarks/daily.py [--users 10000] [--scale 18] [--seed 4343] [--times 1]

The day comes from ``benchmarks/landing.py`` (generated once and cached under
``benchmarks/data/``, not committed); ``--times 5`` runs (b), the same day five times the size.
A daily run finds the features and baselines of earlier days in the store, left by earlier
runs; here the day's own features, with their counts scaled by a seeded random factor per
person and day, stand in for the 91 days before it, and the baselines of the model's training
days are computed from them, so baselines and model training work on a realistic volume. The
model the day uses was fitted and kept by the run of its retraining day, also in the setup
(``--fit-model`` times a retraining day instead, which fits it). That setup is not timed and
runs in a process of its own, so the peak memory printed is the timed run's alone; the day's
own features and baselines are timed. Prints wall time per stage, the total, and the peak
resident memory.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import shutil
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import polars as pl
from floor import floor_seconds
from landing import DAY, day_landing, options

from detectors.settings import load_tuning
from insiderwatch.config import config_for_logs
from insiderwatch.db import Database
from insiderwatch.detect import (
    evidence_rows,
    history_days,
    kept_forests,
    model_rows,
    retrain_anchor,
    training_days,
)
from insiderwatch.features import TOUCHES, USER_DAY, build_features, ensure_baselines
from insiderwatch.ingest import ingest
from insiderwatch.pipeline import detect_range
from insiderwatch.quality import QualityGate
from insiderwatch.store import EventStore
from schemas.features import STORED_FEATURES


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _add_cpu(used: dict[str, float], before: os.times_result) -> None:
    now = os.times()
    used["user"] += now.user - before.user
    used["system"] += now.system - before.system


def _history(store: EventStore, days: int, seed: int) -> None:
    """Earlier days' features: today's, varied per person and day, dated back."""
    features = pl.read_parquet(store.partition("features", USER_DAY, DAY))
    touches = pl.read_parquet(store.partition("features", TOUCHES, DAY))
    rng = np.random.default_rng(seed)
    for back in range(1, days + 1):
        past = DAY - timedelta(days=back)
        factor = pl.Series(rng.lognormal(0.0, 0.35, features.height))
        varied = features.with_columns(
            pl.lit(past).alias("local_date"),
            *[
                (pl.col(n) * factor).round(0) if not n.endswith("share") else pl.col(n)
                for n in STORED_FEATURES
            ],
        )
        store.write_partition("features", USER_DAY, past, varied)
        store.write_partition(
            "features", TOUCHES, past, touches.with_columns(pl.lit(past).alias("local_date"))
        )


def _setup(root: Path, seed: int, fit_model: bool) -> None:
    """What earlier daily runs would have left in the store: the earlier days' features, the
    training days' baselines and, unless the timed run is to fit it, the retraining day's
    model. Run in a process of its own, so the timed run's peak memory is its own and it still
    pays for importing scikit-learn."""
    store, tuning = EventStore(root), load_tuning(None)
    _history(store, history_days(tuning), seed)
    b = tuning.baseline
    earlier = [DAY - timedelta(days=k) for k in range(training_days(tuning), 0, -1)]
    ensure_baselines(store, earlier, b.window_days, b.min_history_days, b.min_peer_size)
    anchor = retrain_anchor(DAY, tuning)
    if not fit_model and anchor < DAY:
        usable = model_rows(evidence_rows(store, anchor, anchor, tuning))
        kept_forests(store, usable, anchor, anchor, tuning)


def parser() -> argparse.ArgumentParser:
    parser = options(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    parser.add_argument(
        "--fit-model",
        action="store_true",
        help="time a retraining day: the model is fitted in the timed run, not read",
    )
    return parser


def run(args: argparse.Namespace) -> dict:
    """One timed daily run; the figures, and the floor of the same landing files."""
    logs = day_landing(args.users, args.scale, args.seed, args.times)
    config = config_for_logs(logs)
    tuning = load_tuning(None)
    root = Path(tempfile.mkdtemp(prefix="iw-daily-"))
    store = EventStore(root / "store")
    timings: dict[str, float] = {}
    stages: dict[str, float] = {}
    used = {"user": 0.0, "system": 0.0}  # CPU time of the timed stages, this process's threads
    try:
        t = time.perf_counter()
        gate = QualityGate()
        gate_load = time.perf_counter() - t

        t, cpu = time.perf_counter(), os.times()
        report = ingest(logs, store, config, DAY, DAY, DAY, gate)
        timings["ingest + gate"] = time.perf_counter() - t
        _add_cpu(used, cpu)
        assert not report.errors, report.errors

        t, cpu = time.perf_counter(), os.times()
        build_features(store, DAY, config)
        timings["features"] = time.perf_counter() - t
        _add_cpu(used, cpu)
        t = time.perf_counter()
        setup = multiprocessing.get_context("spawn").Process(
            target=_setup, args=(store.root, args.seed, args.fit_model)
        )
        setup.start()
        setup.join()
        assert setup.exitcode == 0, "setting up the earlier days failed"
        fitted = "" if args.fit_model else ", the retraining day's model"
        print(
            f"setup, not timed, in a process of its own: {history_days(tuning)} earlier days "
            f"of features, the training days' baselines{fitted} ({time.perf_counter() - t:.1f} s)"
        )

        database = Database(str(root / "alerts.duckdb"))
        t, cpu = time.perf_counter(), os.times()
        alerts = detect_range(store, database, DAY, DAY, config, tuning, "bench", stages)
        timings["detection + alerts"] = time.perf_counter() - t
        _add_cpu(used, cpu)
        database.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    peak = _peak_mb()  # before the floor's reads, which need less
    return {
        "events": report.totals()["read"],
        "gate_load": gate_load,
        "timings": timings,
        "stages": stages,
        "total": sum(timings.values()),
        "cpu_user": used["user"],
        "cpu_system": used["system"],
        "peak_mb": peak,
        "floor": floor_seconds(logs)[0],
        "alerts": alerts.height,
        "budgeted": int(alerts["budgeted"].sum()),
    }


def main() -> None:
    args = parser().parse_args()
    r = run(args)
    size = "" if args.times == 1 else f", {args.times} times the size"
    print(f"people {args.users:,}, events {r['events']:,} (one day, {DAY}{size})")
    print(f"Great Expectations import (once per process): {r['gate_load']:.1f} s")
    for name, seconds in r["timings"].items():
        print(f"  {name:<20} {seconds:7.1f} s")
    print(f"    of which: {', '.join(f'{k} {v:.1f}s' for k, v in r['stages'].items())}")
    total = r["total"]
    print(f"wall time ingest → alerts: {total:.1f} s ({r['events'] / total:,.0f} events/s)")
    cores = (r["cpu_user"] + r["cpu_system"]) / total
    print(
        f"CPU time: user {r['cpu_user']:.1f} s, system {r['cpu_system']:.1f} s "
        f"({cores:.2f} cores busy)"
    )
    print(f"floor (reading the landing files, best of three): {r['floor']:.2f} s")
    print(f"multiple of the floor: {total / r['floor']:.1f}")
    print(f"alerts over threshold {r['alerts']}, within budget {r['budgeted']}")
    print(f"peak memory (RSS): {r['peak_mb']:,.0f} MB")


if __name__ == "__main__":
    main()
