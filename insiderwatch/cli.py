"""The ``insiderwatch`` command line."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from insiderwatch.config import ConfigError, config_for_logs
from insiderwatch.readers import FileError

app = typer.Typer(
    help="Insider-leakage detection over access and mail logs.",
    no_args_is_help=True,
    add_completion=False,
)
samples_app = typer.Typer(
    help="Synthetic organisations for demos, tests and benchmarks.", no_args_is_help=True
)
schemas_app = typer.Typer(
    help="The canonical schema and its generated artefacts.", no_args_is_help=True
)
app.add_typer(samples_app, name="samples")
app.add_typer(schemas_app, name="schemas")
console = Console()

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_LOGS = REPO_ROOT / "sample_logs"
SAMPLE_SEED = 20240401

Logs = Annotated[Path, typer.Option("--logs", help="landing folder", exists=True, file_okay=False)]
Store = Annotated[Path, typer.Option("--store", help="event store folder")]
Day = Annotated[datetime | None, typer.Option(formats=["%Y-%m-%d"])]
ConfigFile = Annotated[
    Path | None,
    typer.Option("--config", help="site config (default: insiderwatch.toml in the landing folder)"),
]


def _day(value: datetime | None) -> date | None:
    return value.date() if value is not None else None


def _today(tz: str) -> date:
    return datetime.now(ZoneInfo(tz)).date()


@samples_app.command("generate")
def samples_generate(
    out: Annotated[Path, typer.Option(help="landing folder to write")],
    users: Annotated[int, typer.Option(min=2)] = 150,
    days: Annotated[int, typer.Option(min=1)] = 90,
    seed: int = SAMPLE_SEED,
    start: Day = None,
    scale: Annotated[float, typer.Option(help="multiplies every activity rate")] = 1.0,
    compress: Annotated[bool, typer.Option(help="write .csv.gz instead of .csv")] = True,
) -> None:
    """Write a synthetic organisation's logs, roster and labels.csv."""
    from insiderwatch.samples import generate

    first = _day(start) or date(2024, 4, 1)
    with console.status(f"generating {users} people × {days} days"):
        written = generate(users, days, seed, out, first, scale, compress)
    table = Table("source", "rows", title=f"wrote {out}")
    for source, rows in written.items():
        table.add_row(source, f"{rows:,}")
    console.print(table)


@schemas_app.command("write-suites")
def schemas_write_suites() -> None:
    """Regenerate the Great Expectations suites from the canonical schema."""
    from insiderwatch.quality import write_suites

    for path in write_suites():
        console.print(f"wrote {path.relative_to(REPO_ROOT)}")


@schemas_app.command("write-docs")
def schemas_write_docs() -> None:
    """Regenerate schemas/README.md from the canonical schema."""
    from schemas.docs import write_docs

    console.print(f"wrote {write_docs().relative_to(REPO_ROOT)}")


def _run_ingest(
    logs: Path,
    store_root: Path | None,
    start: date | None,
    end: date | None,
    as_of: date | None,
    config_file: Path | None,
) -> bool:
    from insiderwatch.db import Database, default_url
    from insiderwatch.ingest import ingest
    from insiderwatch.quality import QualityGate
    from insiderwatch.store import EventStore

    try:
        config = config_for_logs(logs, config_file)
    except ConfigError as exc:
        console.print(f"[red]config error:[/red] {exc}")
        raise typer.Exit(2) from exc
    as_of = as_of or _today(config.site.timezone)
    store = EventStore(store_root) if store_root is not None else None
    database = Database(default_url(store_root)) if store_root is not None else None
    run_id = uuid.uuid4().hex[:12]
    started = datetime.now()
    if database:
        database.start_run(
            run_id,
            "ingest",
            started,
            {"logs": str(logs), "start": start, "end": end, "as_of": as_of},
        )
    with console.status("loading the quality gate (Great Expectations)"):
        gate = QualityGate()
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    with progress:
        task = progress.add_task("reading landing files", total=None)
        try:
            report = ingest(
                logs,
                store,
                config,
                as_of,
                start,
                end,
                gate,
                on_file=lambda _p: progress.advance(task),
                on_plan=lambda n: progress.update(task, total=n),
            )
        except FileError as exc:
            console.print(f"[red]error:[/red] {exc}")
            if database:
                database.finish_run(run_id, datetime.now(), "failed", {"error": str(exc)})
            raise typer.Exit(1) from exc
    _print_report(report, "stored" if store is not None else "would store")
    if database:
        database.record_counts(run_id, report.counts)
        database.finish_run(
            run_id,
            datetime.now(),
            "ok" if report.ok else "failed",
            {
                **report.totals(),
                "errors": [str(e) for e in report.errors],
                "warnings": report.warnings,
            },
        )
        database.close()
    return report.ok


def _print_report(report, verb: str) -> None:
    table = Table(
        "source",
        "days",
        "files",
        "read",
        verb,
        "quarantined",
        "duplicates",
        "gate",
        title="ingest summary",
    )
    by_source: dict[str, list] = {}
    for count in report.counts:
        by_source.setdefault(count.source, []).append(count)
    for source, counts in by_source.items():
        failed = [c for c in counts if c.gate.startswith("failed")]
        gate = f"[red]{len(failed)} day(s) held back[/red]" if failed else "ok"
        table.add_row(
            source,
            str(len([c for c in counts if c.day])),
            str(sum(c.files for c in counts)),
            *(
                f"{sum(getattr(c, k) for c in counts):,}"
                for k in ("read", "stored", "quarantined", "duplicates")
            ),
            gate,
        )
    totals = report.totals()
    table.add_section()
    table.add_row(
        "total",
        "",
        "",
        *(f"{totals[k]:,}" for k in ("read", "stored", "quarantined", "duplicates")),
        "",
    )
    console.print(table)
    for count in report.counts:
        if count.gate.startswith("failed"):
            console.print(f"[red]held back[/red] {count.source} {count.day}: {count.gate}")
    for error in report.errors:
        console.print(f"[red]error:[/red] {error}")
    for warning in report.warnings[:20]:
        console.print(f"[yellow]warning:[/yellow] {warning}")
    if len(report.warnings) > 20:
        console.print(f"[yellow]… {len(report.warnings) - 20} more warnings[/yellow]")
    if report.outside_window:
        console.print(f"{report.outside_window:,} rows of undated files fell outside the window")


@app.command("ingest")
def ingest_command(
    logs: Logs,
    store: Store = Path("store"),
    start: Day = None,
    end: Day = None,
    as_of: Annotated[
        datetime | None,
        typer.Option(
            formats=["%Y-%m-%d"], help="the run's day; later events are future (default: today)"
        ),
    ] = None,
    config: ConfigFile = None,
) -> None:
    """Ingest landing files into the event store through the quality gate."""
    ok = _run_ingest(logs, store, _day(start), _day(end), _day(as_of), config)
    raise typer.Exit(0 if ok else 1)


@app.command("validate")
def validate_command(
    logs: Logs,
    start: Day = None,
    end: Day = None,
    as_of: Annotated[datetime | None, typer.Option(formats=["%Y-%m-%d"])] = None,
    config: ConfigFile = None,
) -> None:
    """Check landing files as ingest would, and report; writes nothing."""
    ok = _run_ingest(logs, None, _day(start), _day(end), _day(as_of), config)
    raise typer.Exit(0 if ok else 1)


@app.command("demo")
def demo_command(
    store: Store = Path("store"),
    logs: Annotated[Path, typer.Option(help="landing folder")] = SAMPLE_LOGS,
) -> None:
    """The embedded default: the whole pipeline over sample_logs/ with DuckDB."""
    ok = _run_ingest(logs, store, None, None, None, None)
    console.print(f"event store: {store.resolve()}")
    raise typer.Exit(0 if ok else 1)


if __name__ == "__main__":  # pragma: no cover
    app()
