"""The ``insiderwatch`` command line."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import ExitStack, closing, contextmanager
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from typer.core import TyperGroup

from insiderwatch.config import ConfigError, config_for_logs
from insiderwatch.readers import FileError


def _expected_failure(exc: BaseException) -> str | None:
    """One line for a failure of the machine or of a resource rather than of the program: a
    store busy with another run, an alert store that cannot be opened, a path that would leave
    its root, a read-only or full disk, a permission refused. None for anything else (a bug,
    which keeps its traceback)."""
    from insiderwatch.db import DatabaseError
    from insiderwatch.locking import StoreBusy
    from insiderwatch.store import UnsafePath

    if isinstance(exc, StoreBusy | DatabaseError | UnsafePath):
        return str(exc)
    if isinstance(exc, OSError) and exc.strerror:
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror}"
    duckdb = sys.modules.get("duckdb")
    if duckdb is not None and isinstance(exc, duckdb.IOException):
        return "the alert store: " + " ".join(str(exc).split())
    return None


class _CleanFailures(TyperGroup):
    """Every command's expected failures end in one line and exit code 1, not a traceback."""

    def invoke(self, ctx):  # type: ignore[no-untyped-def]
        try:
            return super().invoke(ctx)
        except Exception as exc:
            message = _expected_failure(exc)
            if message is None:
                raise
            console.print(f"[red]error:[/red] {message}", soft_wrap=True)
            raise typer.Exit(1) from exc


@contextmanager
def _writing(store: str, db_url: str | None, command: str) -> Iterator[None]:
    """Hold the store's lock (one writing run per store; see insiderwatch.locking)."""
    from insiderwatch.locking import writing

    with writing(store, db_url, f"insiderwatch {command}"):
        yield


app = typer.Typer(
    help="Insider-leakage detection over access and mail logs.",
    no_args_is_help=True,
    add_completion=False,
    cls=_CleanFailures,
)
samples_app = typer.Typer(
    help="Synthetic organisations for demos, tests and benchmarks.", no_args_is_help=True
)
schemas_app = typer.Typer(
    help="The canonical schema and its generated artefacts.", no_args_is_help=True
)
detectors_app = typer.Typer(help="The detector collection.", no_args_is_help=True)
app.add_typer(samples_app, name="samples")
app.add_typer(detectors_app, name="detectors")
app.add_typer(schemas_app, name="schemas")
console = Console()

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_LOGS = REPO_ROOT / "sample_logs"
SAMPLE_SEED = 20240401

Logs = Annotated[Path, typer.Option("--logs", help="landing folder", exists=True, file_okay=False)]
Store = Annotated[
    str,
    typer.Option(
        "--store", help="event store: a folder, or an object-storage URL such as s3://bucket/store"
    ),
]
Day = Annotated[datetime | None, typer.Option(formats=["%Y-%m-%d"])]


class InputFormat(StrEnum):
    auto = "auto"
    canonical = "canonical"
    cert = "cert"
    m365 = "m365"


FormatOption = Annotated[
    InputFormat,
    typer.Option(
        "--format",
        help="landing folder format: canonical, cert (CERT insider-threat data), m365 "
        "(Microsoft 365 audit log and message trace), or auto to tell from the files",
    ),
]
ConfigFile = Annotated[
    Path | None,
    typer.Option("--config", help="site config (default: insiderwatch.toml in the landing folder)"),
]
ForceRoster = Annotated[
    bool,
    typer.Option(
        "--force-roster",
        help="take a roster that is empty or much smaller than the stored one "
        "(quality.roster_min_share)",
    ),
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


class CertRelease(StrEnum):
    r4 = "r4.2"
    r6 = "r6.2"


@samples_app.command("cert")
def samples_cert(
    out: Annotated[Path, typer.Option(help="folder to write the CERT-format release into")],
    source: Annotated[
        Path, typer.Option("--from", help="canonical landing folder", exists=True, file_okay=False)
    ] = SAMPLE_LOGS,
    release: Annotated[CertRelease, typer.Option(help="CERT layout to write")] = CertRelease.r6,
    seed: int = 1,
) -> None:
    """Write a canonical landing folder in the CERT insider-threat layout, with an answer key
    (test data: the real CERT data may not be redistributed)."""
    from insiderwatch.adapters.cert_writer import write_cert

    written = write_cert(source, out, release.value, seed)
    for name, rows in written.items():
        console.print(f"{name}: {rows:,} records")
    console.print(f"wrote {out} ({release.value}; LDAP/ and answers/ beside the files)")


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


@detectors_app.command("list")
def detectors_list(
    tuning: Annotated[Path | None, typer.Option(help="tuning file to apply")] = None,
) -> None:
    """Every detector with its severity and current parameter values."""
    loaded = _load_tuning(tuning)
    table = Table(
        "id", "kind", "severity", "channel", "parameters", title=f"detectors ({loaded.source})"
    )
    for d in loaded.detectors:
        params = ", ".join(f"{k}={v}" for k, v in d.params.model_dump().items())
        table.add_row(d.id, d.meta.kind, d.meta.severity, d.meta.channel, params)
    console.print(table)


@detectors_app.command("write-docs")
def detectors_write_docs() -> None:
    """Regenerate detectors/README.md from the detectors' metadata."""
    from detectors.catalogue import write_docs

    console.print(f"wrote {write_docs().relative_to(REPO_ROOT)}")


def _run_ingest(
    logs: Path,
    store_root: str | None,
    start: date | None,
    end: date | None,
    as_of: date | None,
    config_file: Path | None,
    db_url: str | None = None,
    fmt: str = "auto",
    force_roster: bool = False,
):
    """Ingest (or only check, with no store) and print the summary; returns the report.

    A vendor format is first staged as canonical files in a scratch folder (see
    ``insiderwatch.adapters``); quarantine rows still name the vendor file and line.
    """
    from insiderwatch.adapters import staged_landing

    try:
        config = config_for_logs(logs, config_file)
    except ConfigError as exc:
        console.print(f"[red]config error:[/red] {exc}")
        raise typer.Exit(2) from exc
    as_of = as_of or _today(config.site.timezone)
    with ExitStack() as scratch:
        try:
            with console.status(f"reading {logs} ({fmt})") as status:
                staged = scratch.enter_context(
                    staged_landing(
                        logs,
                        fmt,
                        store_root,
                        config,
                        start,
                        end,
                        progress=lambda message: status.update(f"staging {message}"),
                    )
                )
        except FileError as exc:
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(1) from exc
        if staged.format != "canonical":
            console.print(staged.summary())
            if not staged.reconciles:  # pragma: no cover - a bug, never bad input
                raise AssertionError(f"the staged records do not reconcile: {staged}")
        return _ingest_staged(
            staged, logs, store_root, start, end, as_of, config, db_url, force_roster
        )


def _ingest_staged(
    staged,
    logs: Path,
    store_root: str | None,
    start: date | None,
    end: date | None,
    as_of: date,
    config,
    db_url: str | None,
    force_roster: bool = False,
):
    from insiderwatch.db import Database, default_url, recorded_run
    from insiderwatch.store import EventStore

    landing = staged.folder
    store = EventStore(store_root) if store_root is not None else None
    params = {"logs": str(logs), "format": staged.format, "start": start, "end": end}
    with ExitStack() as recording:
        run = None
        if store_root is not None:
            database = recording.enter_context(closing(Database(db_url or default_url(store_root))))
            run = recording.enter_context(
                recorded_run(database, "ingest", {**params, "as_of": as_of})
            )
        report = _ingest_with_progress(landing, store, config, as_of, start, end, force_roster, run)
        report.warnings[:0] = staged.warnings
        _print_report(report, "stored" if store is not None else "would store")
        if run is not None:
            database.record_counts(run.run_id, report.counts)
            run.status = "ok" if report.ok else "failed"
            run.summary = {
                **report.totals(),
                "errors": [str(e) for e in report.errors],
                "warnings": report.warnings,
            }
    return report


def _ingest_with_progress(landing, store, config, as_of, start, end, force_roster, run):
    from insiderwatch.ingest import RosterRefused, ingest
    from insiderwatch.quality import QualityGate

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
                landing,
                store,
                config,
                as_of,
                start,
                end,
                gate,
                on_file=lambda _p: progress.advance(task),
                on_plan=lambda n: progress.update(task, total=n),
                force_roster=force_roster,
            )
        except FileError as exc:
            console.print(f"[red]error:[/red] {exc}")
            if run is not None:
                run.summary = {"error": str(exc)}
            # A refused roster is bad input that stopped the run before it began.
            raise typer.Exit(2 if isinstance(exc, RosterRefused) else 1) from exc
    return report


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
    store: Store = "store",
    start: Day = None,
    end: Day = None,
    as_of: Annotated[
        datetime | None,
        typer.Option(
            formats=["%Y-%m-%d"], help="the run's day; later events are future (default: today)"
        ),
    ] = None,
    config: ConfigFile = None,
    fmt: FormatOption = InputFormat.auto,
    force_roster: ForceRoster = False,
) -> None:
    """Ingest landing files into the event store through the quality gate."""
    with _writing(store, _db_url(None, store), "ingest"):
        report = _run_ingest(
            logs, store, _day(start), _day(end), _day(as_of), config, None, fmt, force_roster
        )
    raise typer.Exit(0 if report.ok else 1)


@app.command("validate")
def validate_command(
    logs: Logs,
    start: Day = None,
    end: Day = None,
    as_of: Annotated[datetime | None, typer.Option(formats=["%Y-%m-%d"])] = None,
    config: ConfigFile = None,
    fmt: FormatOption = InputFormat.auto,
) -> None:
    """Check landing files as ingest would, and report; writes nothing."""
    report = _run_ingest(logs, None, _day(start), _day(end), _day(as_of), config, None, fmt)
    raise typer.Exit(0 if report.ok else 1)


def _load_tuning(path: Path | None):
    from detectors.base import TuningError
    from detectors.settings import load_tuning

    try:
        return load_tuning(path) if path is not None else load_tuning()
    except TuningError as exc:
        console.print(f"[red]tuning error:[/red] {exc}")
        raise typer.Exit(2) from exc


def _detect(
    store_root: str,
    db_url: str,
    start: date,
    end: date,
    config,
    tuning,
) -> int:
    """Features, rules, model, scoring and publishing for the range; returns alerts sent."""
    from insiderwatch.db import Database, recorded_run
    from insiderwatch.leavers import sync_leavers
    from insiderwatch.pipeline import detect_range
    from insiderwatch.store import EventStore

    params = {"start": start, "end": end, "tuning": tuning.source}
    timings: dict[str, float] = {}
    with closing(Database(db_url)) as database, recorded_run(database, "detect", params) as run:
        with console.status(f"detecting {start} – {end}"):
            alerts = detect_range(
                EventStore(store_root), database, start, end, config, tuning, run.run_id, timings
            )
        sent = int(alerts["budgeted"].sum()) if alerts.height else 0
        with console.status("updating the leavers list"):
            updates = sync_leavers(EventStore(store_root), database, config, end)
        for update in updates:
            if update.started_lookback:
                console.print(
                    f"lookback started for {update.user} (notice {update.notice_date}): "
                    f"{update.status}"
                )
        run.summary = {"alerts": alerts.height, "budgeted": sent, "seconds": timings}
    console.print(
        f"detection {start} – {end}: {alerts.height} user-days over the alert threshold, "
        f"{sent} within the daily review budget "
        f"({', '.join(f'{k} {v:.1f}s' for k, v in timings.items())})"
    )
    return sent


DbUrl = Annotated[
    str | None,
    typer.Option(
        "--db",
        envvar="INSIDERWATCH_DB",
        help="alert store: a DuckDB file or postgresql:// URL (default: <store>/alerts.duckdb)",
    ),
]
TuningFile = Annotated[
    Path | None,
    typer.Option("--tuning", help="analysts' overrides (default detectors/tuning.toml)"),
]


def _db_url(db: str | None, store: str) -> str:
    from insiderwatch.db import default_url

    try:
        return db or default_url(store)
    except ValueError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc


def _run(
    logs: Path,
    store: str,
    db: str | None,
    start: date | None,
    end: date | None,
    as_of: date | None,
    config_file: Path | None,
    tuning_file: Path | None,
    fmt: str = "auto",
    force_roster: bool = False,
) -> bool:
    tuning = _load_tuning(tuning_file)
    try:
        config = config_for_logs(logs, config_file)
    except ConfigError as exc:
        console.print(f"[red]config error:[/red] {exc}")
        raise typer.Exit(2) from exc
    as_of = as_of or end or _today(config.site.timezone)
    db_url = _db_url(db, store)
    with _writing(store, db_url, "run"):
        report = _run_ingest(logs, store, start, end, as_of, config_file, db_url, fmt, force_roster)
        days = sorted({c.day for c in report.counts if c.day is not None and c.stored > 0})
        if not days:
            console.print("[yellow]no events stored; nothing to detect[/yellow]")
            return False
        _detect(store, db_url, start or days[0], end or days[-1], config, tuning)
    return report.ok


@app.command("run")
def run_command(
    logs: Logs,
    store: Store = "store",
    start: Day = None,
    end: Day = None,
    as_of: Annotated[
        datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help="the run's day (default: --end, else today)"),
    ] = None,
    config: ConfigFile = None,
    db: DbUrl = None,
    tuning: TuningFile = None,
    fmt: FormatOption = InputFormat.auto,
    force_roster: ForceRoster = False,
) -> None:
    """Ingest, detect and publish alerts for the days in the landing folder (or --start/--end)."""
    ok = _run(
        logs, store, db, _day(start), _day(end), _day(as_of), config, tuning, fmt, force_roster
    )
    raise typer.Exit(0 if ok else 1)


@app.command("demo")
def demo_command(
    store: Store = "store",
    logs: Annotated[Path, typer.Option(help="landing folder")] = SAMPLE_LOGS,
    top: Annotated[int, typer.Option(help="alerts to show")] = 15,
) -> None:
    """The embedded default: the whole pipeline over sample_logs/ with DuckDB, then the top
    alerts."""
    ok = _run(logs, store, None, None, None, None, None, None)
    _show_alerts(_db_url(None, store), None, None, False, None, top, "top alerts")
    _demo_reports(store, logs)
    console.print(f"event store and alert store: {Path(store).resolve()}")
    raise typer.Exit(0 if ok else 1)


def _demo_reports(store: str, logs: Path) -> None:
    """The reports of the latest day with alerts, so the demo ends with something to open."""
    from insiderwatch.db import Database
    from insiderwatch.reports import counts_line, write_daily_reports
    from insiderwatch.store import EventStore

    with (
        _writing(store, _db_url(None, store), "demo"),
        closing(Database(_db_url(None, store))) as database,
    ):
        latest = database.query("SELECT MAX(alert_date) FROM alerts WHERE budgeted")[0][0]
        if latest is None:
            return
        written = write_daily_reports(EventStore(store), database, latest, config_for_logs(logs))
    console.print(counts_line(written))
    console.print(f"open the security report: {written.security.resolve()}")


def _show_alerts(
    db_url: str,
    start: date | None,
    end: date | None,
    include_over_budget: bool,
    status: str | None,
    limit: int,
    title: str,
) -> None:
    from insiderwatch.alerts import list_alerts
    from insiderwatch.db import Database

    database = Database(db_url)
    frame = list_alerts(database, start, end, include_over_budget, status)
    database.close()
    frame = frame.sort(["score", "alert_date", "rank"], descending=[True, True, False])
    table = Table(
        title=f"{title} ({frame.height} in store, showing {min(limit, frame.height)})",
        show_lines=True,
    )
    table.add_column("alert", no_wrap=True)
    table.add_column("date", no_wrap=True)
    table.add_column("person")
    table.add_column("risk", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("why (strongest reasons)", overflow="fold", min_width=30)
    colours = {"critical": "red", "high": "yellow", "medium": "cyan"}
    for row in frame.head(limit).iter_rows(named=True):
        colour = colours.get(row["severity"], "white")
        table.add_row(
            row["alert_id"],
            str(row["alert_date"]),
            f"{row['user_id']} {row['name'] or ''}\n{row['department'] or ''}",
            f"[{colour}]{row['score']} {row['severity']}[/{colour}]",
            row["status"],
            "\n".join(row["reasons"][:2]),
        )
    console.print(table)


alerts_app = typer.Typer(help="Read and export the alert store.", no_args_is_help=True)
app.add_typer(alerts_app, name="alerts")


@alerts_app.command("list")
def alerts_list(
    store: Store = "store",
    db: DbUrl = None,
    start: Day = None,
    end: Day = None,
    status: Annotated[str | None, typer.Option(help="only alerts with this status")] = None,
    all_alerts: Annotated[
        bool, typer.Option("--all", help="include alerts held back by the daily budget")
    ] = False,
    limit: int = 50,
) -> None:
    """Alerts, highest score first."""
    _show_alerts(_db_url(db, store), _day(start), _day(end), all_alerts, status, limit, "alerts")


class ExportFormat(StrEnum):
    csv = "csv"
    parquet = "parquet"


@alerts_app.command("export")
def alerts_export(
    out: Annotated[Path, typer.Option(help="file to write")],
    format: Annotated[ExportFormat, typer.Option(help="csv or parquet")] = ExportFormat.csv,
    store: Store = "store",
    db: DbUrl = None,
    start: Day = None,
    end: Day = None,
    all_alerts: Annotated[
        bool, typer.Option("--all", help="include alerts held back by the daily budget")
    ] = False,
    pseudonymise: Annotated[
        bool,
        typer.Option(
            "--pseudonymise",
            help="replace people by keyed pseudonyms (key from INSIDERWATCH_PSEUDONYM_KEY)",
        ),
    ] = False,
) -> None:
    """Write alerts to CSV (spreadsheet-safe) or Parquet."""
    import polars as pl

    from insiderwatch.alerts import export_alerts, list_alerts
    from insiderwatch.db import Database
    from insiderwatch.privacy import Identities, pseudonymise_frame
    from insiderwatch.store import EventStore, io_path

    key = _pseudonym_key() if pseudonymise else None
    database = Database(_db_url(db, store))
    frame = list_alerts(database, _day(start), _day(end), all_alerts)
    database.close()
    if key is not None:
        roster = pl.read_parquet(io_path(EventStore(store).roster_path()))
        frame = pseudonymise_frame(frame, Identities(roster), key)
    export_alerts(frame, out, format.value)
    note = " (pseudonymised)" if key is not None else ""
    console.print(f"wrote {frame.height} alerts to {out}{note}")


def _pseudonym_key() -> bytes:
    from insiderwatch.privacy import PrivacyError, pseudonym_key

    try:
        return pseudonym_key()
    except PrivacyError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc


class Language(StrEnum):
    en = "en"
    ja = "ja"


def _site_config(logs: Path | None, config_file: Path | None):
    from insiderwatch.config import load_config

    try:
        if logs is not None:
            return config_for_logs(logs, config_file)
        return load_config(config_file)
    except ConfigError as exc:
        console.print(f"[red]config error:[/red] {exc}")
        raise typer.Exit(2) from exc


SiteLogs = Annotated[
    Path | None,
    typer.Option("--logs", help="landing folder whose insiderwatch.toml applies", file_okay=False),
]


@app.command("report")
def report_command(
    day: Annotated[datetime, typer.Option("--date", formats=["%Y-%m-%d"], help="the day")],
    store: Store = "store",
    db: DbUrl = None,
    logs: SiteLogs = None,
    config: ConfigFile = None,
    language: Annotated[
        Language | None, typer.Option(help="en or ja (default: report.language)")
    ] = None,
    pseudonymise: Annotated[
        bool,
        typer.Option(
            "--pseudonymise",
            help="write the security overview with keyed pseudonyms "
            "(key from INSIDERWATCH_PSEUDONYM_KEY)",
        ),
    ] = False,
    send: Annotated[bool, typer.Option("--send", help="mail the reports (smtp settings)")] = False,
    resend: Annotated[
        bool, typer.Option("--resend", help="with --send: send even what was sent already")
    ] = False,
) -> None:
    """Write the day's security report and one report per supervisor; on the last day of a
    month or quarter also the inbound-approach digest. --send mails them. --pseudonymise
    writes only the security overview, with keyed pseudonyms."""
    from insiderwatch.db import Database
    from insiderwatch.delivery import DeliveryError, send_reports
    from insiderwatch.digest import periods_ending, write_digest
    from insiderwatch.reports import counts_line, write_daily_reports
    from insiderwatch.store import EventStore

    site = _site_config(logs, config)
    if pseudonymise and send:
        console.print("[red]error:[/red] --send mails the named reports; drop --pseudonymise")
        raise typer.Exit(2)
    key = _pseudonym_key() if pseudonymise else None
    event_store = EventStore(store)
    if not event_store.roster_path().exists():
        console.print(f"[red]error:[/red] no roster in {store}; run ingest first")
        raise typer.Exit(2)
    lang = language.value if language else None
    with (
        _writing(store, _db_url(db, store), "report"),
        closing(Database(_db_url(db, store))) as database,
    ):
        written = write_daily_reports(
            event_store, database, day.date(), site, language=lang, pseudonymise_key=key
        )
        console.print(counts_line(written))
        console.print(f"security report: {written.security}")
        if written.unrouted:
            console.print(
                f"[yellow]no supervisor in the roster for: {', '.join(written.unrouted)}[/yellow]"
            )
        for period in periods_ending(day.date()):
            console.print(f"digest: {write_digest(event_store, period, site, lang)}")
        if send:
            try:
                deliveries = send_reports(written, site, database, resend=resend)
            except DeliveryError as exc:
                console.print(f"[red]not sent:[/red] {exc}")
                raise typer.Exit(1) from exc
            counted: dict[str, int] = {}
            for d in deliveries:
                counted[d.status] = counted.get(d.status, 0) + 1
            console.print(
                "mail: " + ", ".join(f"{n} {status}" for status, n in sorted(counted.items()))
            )


@app.command("digest")
def digest_command(
    period: Annotated[str, typer.Argument(help="YYYY-MM (a month) or YYYY-Qn (a quarter)")],
    store: Store = "store",
    logs: SiteLogs = None,
    config: ConfigFile = None,
    language: Annotated[
        Language | None, typer.Option(help="en or ja (default: report.language)")
    ] = None,
) -> None:
    """The inbound-approach digest (METI item 14) for a month or a quarter."""
    from insiderwatch.digest import DigestError, parse_period, write_digest
    from insiderwatch.store import EventStore

    site = _site_config(logs, config)
    try:
        chosen = parse_period(period)
    except DigestError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    with _writing(store, None, "digest"):
        target = write_digest(EventStore(store), chosen, site, language.value if language else None)
    console.print(f"wrote {target} and {target.with_suffix('.csv').name}")


@app.command("triage")
def triage_command(
    alert_id: Annotated[str, typer.Argument(help="the alert's id (IW-YYYYMMDD-…)")],
    status: Annotated[str, typer.Option(help="new, reviewing, confirmed or dismissed")],
    note: Annotated[str, typer.Option(help="why")] = "",
    actor: Annotated[str, typer.Option(help="who decided")] = "",
    store: Store = "store",
    db: DbUrl = None,
) -> None:
    """Set an alert's triage status (kept across reruns of its day)."""
    from insiderwatch.alerts import TriageError, set_status
    from insiderwatch.db import Database

    with (
        _writing(store, _db_url(db, store), "triage"),
        closing(Database(_db_url(db, store))) as database,
    ):
        try:
            previous = set_status(database, alert_id, status, datetime.now(), note, actor)
        except TriageError as exc:
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(1) from exc
    console.print(f"{alert_id}: {previous} → {status}")


@app.command("lookback")
def lookback_command(
    user: Annotated[str, typer.Argument(help="the leaver's user id")],
    notice_date: Annotated[str, typer.Option(help="day notice was given, YYYY-MM-DD")],
    last_day: Annotated[str | None, typer.Option(help="last working day, YYYY-MM-DD")] = None,
    months: Annotated[int, typer.Option(help="months before notice to review")] = 6,
    out: Annotated[Path, typer.Option(help="folder for the report and tables")] = Path("lookbacks"),
    store: Store = "store",
    config: ConfigFile = None,
) -> None:
    """Review a leaver's last months week by week against their own past and their peers."""
    import polars as pl

    from insiderwatch.config import load_config
    from insiderwatch.leavers import write_lookback
    from insiderwatch.lookback import LookbackError, amount, validate_request
    from insiderwatch.store import EventStore, io_path

    events = EventStore(store)
    if not events.roster_path().exists():
        console.print(f"[red]error:[/red] no roster in {store}; ingest first")
        raise typer.Exit(2)
    try:
        site = load_config(config)
        request = validate_request(
            {"user": user, "notice_date": notice_date, "last_day": last_day, "months": months},
            pl.read_parquet(io_path(events.roster_path())),
        )
        with _writing(store, None, "lookback"):
            folder, result = write_lookback(events, request, site, out)
    except (LookbackError, ConfigError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    console.print(f"[bold]{request.user}[/bold], notice {request.notice_date}: {result.verdict}")
    table = Table("measure", "last 30 days", "last 60 days", "own earlier", "peers (30 days)",
                  title="daily means")  # fmt: skip
    for row in result.comparison.iter_rows(named=True):
        table.add_row(
            row["label"],
            *(
                "n/a" if row[k] is None else amount(row[k], row["unit"])
                for k in ("last_30_days", "last_60_days", "own_earlier", "peers_last_30_days")
            ),
        )
    console.print(table)
    console.print(
        f"weekly table: {folder / 'weekly.csv'} (and .parquet), {folder / 'comparison.csv'}"
    )


@app.command("leavers")
def leavers_command(store: Store = "store", db: DbUrl = None) -> None:
    """People on notice, their lookback's verdict and their open alerts."""
    from insiderwatch.db import Database
    from insiderwatch.leavers import list_leavers

    database = Database(_db_url(db, store))
    frame = list_leavers(database)
    database.close()
    table = Table(
        "user", "department", "notice", "last day", "lookback", "open alerts", "verdict",
        title=f"leavers ({frame.height})", show_lines=True,
    )  # fmt: skip
    for row in frame.iter_rows(named=True):
        table.add_row(
            f"{row['user_id']} {row['name'] or ''}",
            row["department"] or "",
            str(row["notice_date"]),
            str(row["last_day"] or ""),
            row["lookback_status"],
            str(row["open_alerts"]),
            row["lookback_verdict"] or "",
        )
    console.print(table)


@app.command("evaluate")
def evaluate_command(
    labels: Annotated[
        Path | None, typer.Option(help="labels CSV: user, scenario, date", exists=True)
    ] = None,
    cert_answers: Annotated[
        Path | None,
        typer.Option(
            "--cert-answers",
            help="the CERT answer key instead of labels: the answers folder or its insiders.csv",
            exists=True,
        ),
    ] = None,
    dataset: Annotated[
        str | None,
        typer.Option(help="CERT release in the answer key (4.2, r6.2, …) when it lists several"),
    ] = None,
    budget: Annotated[
        float | None,
        typer.Option(help="daily review budget as a share of headcount (default: tuning's)"),
    ] = None,
    store: Store = "store",
    db: DbUrl = None,
    start: Day = None,
    end: Day = None,
) -> None:
    """Recall, precision and detection delay of the stored alerts against labels."""
    from insiderwatch.alerts import list_alerts
    from insiderwatch.db import Database
    from insiderwatch.evaluate import apply_budget, evaluate, read_labels

    if (labels is None) == (cert_answers is None):
        console.print("[red]error:[/red] give either --labels or --cert-answers")
        raise typer.Exit(2)
    try:
        if cert_answers is not None:
            from insiderwatch.adapters.cert import read_answers

            truth, warnings = read_answers(cert_answers, dataset)
            for warning in warnings:
                console.print(f"[yellow]warning:[/yellow] {warning}")
        else:
            assert labels is not None
            truth = read_labels(labels)
    except FileError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    if truth.height == 0:
        console.print("[red]error:[/red] the labels hold no insider")
        raise typer.Exit(2)
    database = Database(_db_url(db, store))
    alerts = list_alerts(database, include_over_budget=True)
    database.close()
    tuning = _load_tuning(None)
    share = budget if budget is not None else tuning.scoring.budget_share
    import polars as pl

    from insiderwatch.store import EventStore, io_path

    roster = pl.read_parquet(io_path(EventStore(store).roster_path()))
    sent = apply_budget(alerts, roster, share, tuning.scoring.budget_min)
    first = _day(start) or truth["day"].min()
    last = _day(end) or truth["day"].max()
    if alerts.height:
        first = _day(start) or min(first, alerts["alert_date"].min())
        last = _day(end) or max(last, alerts["alert_date"].max())
    table = Table(
        "scenario", "insiders", "insider recall", "user-days", "user-day recall", "alerts",
        "precision", "median delay (days)",
        title=f"evaluation {first} – {last}, budget {share:.1%} of headcount per day",
    )  # fmt: skip
    for s in evaluate(sent, truth, first, last):
        table.add_row(
            s.name,
            f"{s.detected}/{s.insiders}",
            f"{s.insider_recall:.2f}",
            f"{s.user_days_hit}/{s.user_days}",
            f"{s.user_day_recall:.2f}",
            str(s.alerts),
            f"{s.precision:.2f}",
            "" if s.median_delay is None else f"{s.median_delay:g}",
        )
    console.print(table)


if __name__ == "__main__":  # pragma: no cover
    app()
