"""(b) How the daily run grows: the benchmark day and the same day N times the size.

    uv run python benchmarks/growth.py [--times 5] [--users 10000] [--scale 18] [--seed 4343]

Runs ``benchmarks/daily.py``'s timed run twice, each in a fresh process (so each peak memory
is its own): on the day, then on the day ``--times`` times the size (``landing.py`` makes it
once, by copying the day's events with their timestamps moved a few seconds). Prints both
runs' stage times, wall time, floor and peak memory, each as a ratio of the smaller run's, and
whether the run grew at most linearly: wall time and peak memory at most ``--times`` times.
"""

from __future__ import annotations

import argparse
import multiprocessing
from multiprocessing.connection import Connection

from daily import parser, run


def _child(args: argparse.Namespace, out: Connection) -> None:
    out.send(run(args))


def _in_own_process(args: argparse.Namespace) -> dict:
    ctx = multiprocessing.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_child, args=(args, send))
    child.start()
    result = receive.recv()
    child.join()
    assert child.exitcode == 0, "the timed run failed"
    return result


def main() -> None:
    args = parser().parse_args()
    times = args.times if args.times > 1 else 5
    small = _in_own_process(argparse.Namespace(**{**vars(args), "times": 1}))
    large = _in_own_process(argparse.Namespace(**{**vars(args), "times": times}))
    rows = [("events", small["events"], large["events"], "{:,.0f}")]
    rows += [(k, small["timings"][k], large["timings"][k], "{:.1f} s") for k in small["timings"]]
    rows += [
        (f"  {k}", small["stages"][k], large["stages"][k], "{:.1f} s") for k in small["stages"]
    ]
    rows += [
        ("wall time ingest → alerts", small["total"], large["total"], "{:.1f} s"),
        ("floor (reading the files)", small["floor"], large["floor"], "{:.2f} s"),
        ("peak memory (RSS)", small["peak_mb"], large["peak_mb"], "{:,.0f} MB"),
    ]
    print(f"{'':<28}{'the day':>14}{f'{times} × the day':>16}{'ratio':>8}")
    for name, a, b, fmt in rows:
        ratio = f"{b / a:.2f}" if a else "-"
        print(f"{name:<28}{fmt.format(a):>14}{fmt.format(b):>16}{ratio:>8}")
    scale = large["events"] / small["events"]
    grew = max(large["total"] / small["total"], large["peak_mb"] / small["peak_mb"])
    verdict = "yes" if grew <= scale else "no"
    print(f"events grew {scale:.2f} ×; wall time and memory grew at most linearly: {verdict}")
    print(
        f"multiple of the floor: {small['total'] / small['floor']:.1f} (the day), "
        f"{large['total'] / large['floor']:.1f} ({times} × the day)"
    )


if __name__ == "__main__":
    main()
