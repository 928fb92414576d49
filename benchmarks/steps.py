"""Where the ingest's time goes: the daily run's ingest and gate on (a)'s landing files, each
step's time summed over the sources, with the CPU and system time and page faults it took.

    uv run python benchmarks/steps.py [--workers 2] [--times 1] [--no-gate]
        [--users 10000] [--scale 18] [--seed 4343]

Runs :func:`insiderwatch.ingest.ingest` as ``daily.py`` does (``--workers`` sources at a time,
two in the daily run) into a fresh store, with the ingest's own steps wrapped in timers: read
(inflate and parse a landing file), row checks (typing, checking, tying mail to people; of
which typing and mail are shown apart), gate, order (``cluster``), duplicates, write. With two
sources at a time the steps of both are summed, so they add up to more than the wall time.
System time is mostly the kernel handing out zeroed pages, one page fault each; ``--times 5``
and ``--workers 1`` against ``--workers 2`` show how (b) grows.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from landing import DAY, day_landing, options

import insiderwatch.store
from insiderwatch import ingest as ingest_module
from insiderwatch.config import config_for_logs
from insiderwatch.quality import QualityGate
from insiderwatch.store import EventStore

# (module, function, label), in the order the table prints them.
STEPS = [
    (ingest_module, "read_landing_file", "read"),
    (ingest_module, "check_events", "row checks"),
    (ingest_module, "type_and_check", "  of which typing"),
    (ingest_module, "_tie_mail", "  of which mail to people"),
    (None, "validate", "gate"),
    (ingest_module, "cluster", "order"),
    (ingest_module, "first_copies", "duplicates"),
    (insiderwatch.store, "write_atomic", "write"),
]


class Timers:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self._lock = threading.Lock()

    def wrap(self, owner: Any, name: str, label: str) -> None:
        inner: Callable[..., Any] = getattr(owner, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                with self._lock:
                    self.seconds[label] += time.perf_counter() - start

        setattr(owner, name, timed)


def main() -> None:
    cli = options(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    cli.add_argument("--workers", type=int, default=2, help="sources at a time (daily run: 2)")
    cli.add_argument("--no-gate", action="store_true", help="leave the Great Expectations gate out")
    args = cli.parse_args()
    logs = day_landing(args.users, args.scale, args.seed, args.times)
    config = config_for_logs(logs)
    gate = None if args.no_gate else QualityGate()
    timers = Timers()
    for owner, name, label in STEPS:
        if owner is not None:
            timers.wrap(owner, name, label)
        elif gate is not None:
            timers.wrap(gate, name, label)
    with tempfile.TemporaryDirectory(prefix="iw-steps-") as tmp:
        store = EventStore(Path(tmp) / "store")
        before = resource.getrusage(resource.RUSAGE_SELF)
        start = time.perf_counter()
        report = ingest_module.ingest(
            logs, store, config, DAY, DAY, DAY, gate, workers=args.workers
        )
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_SELF)
    assert not report.errors, report.errors
    print(f"{logs.name}: {report.totals()['read']:,} events, {args.workers} source(s) at a time")
    for _, _, label in STEPS:
        if label in timers.seconds:
            print(f"  {label:<28}{timers.seconds[label]:>7.2f} s")
    print(f"wall time ingest + gate       {wall:>7.2f} s")
    print(f"CPU time (user)               {after.ru_utime - before.ru_utime:>7.2f} s")
    print(f"system time                   {after.ru_stime - before.ru_stime:>7.2f} s")
    print(f"page faults                   {after.ru_minflt - before.ru_minflt:>10,}")
    print(f"peak memory (RSS)             {after.ru_maxrss / 1024:>7,.0f} MB")


if __name__ == "__main__":
    main()
