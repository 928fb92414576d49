"""(b) How the daily run grows: the benchmark day and the same day N times the size.

    uv run python benchmarks/growth.py [--times 5] [--repeat 2] [--users 10000] [--scale 18]
        [--seed 4343]

Runs ``benchmarks/daily.py``'s timed run on the day and on the day ``--times`` times the size
(``landing.py`` makes it once, by copying the day's events with their timestamps moved a few
seconds), each in a fresh process (so each peak memory is its own), ``--repeat`` times each,
the two sizes taking turns so that a slow spell of the machine falls on both. Every run's wall
time is printed; the fastest run of each size is compared, as ``timeit`` and the floor take the
best of several: this machine's wall time for the same run varies by a fifth from one minute to
the next. Prints the two fastest runs' stage times, wall time, floor and peak memory (the
highest of the runs), each as a ratio of the smaller day's, and whether the run grew at most
linearly: wall time and peak memory at most as many times as the events. The timed runs' CPU
time, user and system, is compared too: on this virtual machine the kernel's part (handing out
zeroed pages) grows faster than the events, and the floor's read with it.
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
    cli = parser()
    cli.add_argument("--repeat", type=int, default=2, help="runs of each size; the fastest counts")
    args = cli.parse_args()
    times = args.times if args.times > 1 else 5
    runs: dict[int, list[dict]] = {1: [], times: []}
    for _ in range(max(1, args.repeat)):
        for size in runs:
            options = {**vars(args), "times": size}
            del options["repeat"]
            runs[size].append(_in_own_process(argparse.Namespace(**options)))
    for size, results in runs.items():
        walls = ", ".join(f"{r['total']:.1f} s" for r in results)
        print(f"wall time, {'the day' if size == 1 else f'{size} × the day'}: {walls}")
    small, large = (min(runs[size], key=lambda r: r["total"]) for size in runs)
    small["peak_mb"] = max(r["peak_mb"] for r in runs[1])
    large["peak_mb"] = max(r["peak_mb"] for r in runs[times])
    rows = [("events", small["events"], large["events"], "{:,.0f}")]
    rows += [(k, small["timings"][k], large["timings"][k], "{:.1f} s") for k in small["timings"]]
    rows += [
        (f"  {k}", small["stages"][k], large["stages"][k], "{:.1f} s") for k in small["stages"]
    ]
    rows += [
        ("wall time ingest → alerts", small["total"], large["total"], "{:.1f} s"),
        ("  CPU time (user)", small["cpu_user"], large["cpu_user"], "{:.1f} s"),
        ("  system time", small["cpu_system"], large["cpu_system"], "{:.1f} s"),
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
        f"the work (user CPU time) grew {large['cpu_user'] / small['cpu_user']:.2f} ×, "
        f"the kernel's part (system time) {large['cpu_system'] / small['cpu_system']:.2f} ×, "
        f"the floor {large['floor'] / small['floor']:.2f} ×"
    )
    print(
        f"multiple of the floor: {small['total'] / small['floor']:.1f} (the day), "
        f"{large['total'] / large['floor']:.1f} ({times} × the day)"
    )


if __name__ == "__main__":
    main()
