"""User-day evidence: events annotated once, aggregated per person and local day, stored, and
joined with past-only baselines when a day is scored.

Stored per day (``features/user_day`` and ``features/touches`` partitions) so that a daily run
reads one day of events and small feature files for the baseline window. Everything here is
one lazy query per stage; nothing loops over rows.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection
from datetime import date, timedelta

import polars as pl

from detectors.base import is_external_mail
from insiderwatch.calendar import day_offset, wall_clock, workday_expr
from insiderwatch.config import Config
from insiderwatch.store import EventStore, io_path, io_paths, remove_tree
from schemas.canonical import CLASSIFICATIONS
from schemas.features import FEATURE_NAMES, STORED_FEATURES, WINDOW_FEATURES

KEY = ("user", "local_date")
USER_DAY = "user_day"
TOUCHES = "touches"
EXTERNAL_MAIL = "external_mail"  # features/external_mail/date=D: build_features' copy
# Higher rank = more sensitive; used to take the stricter of the column and the path rule.
LEVEL_RANK = {level: rank for rank, level in enumerate(reversed(CLASSIFICATIONS), start=1)}


# ---------------------------------------------------------------------------------------------
# Shared expressions


def domain_pattern(domains: tuple[str, ...] | list[str]) -> str | None:
    """Regex matching a host or address domain equal to, or a subdomain of, any of ``domains``.

    >>> bool(re.search(domain_pattern(["dropbox.com"]), "www.dropbox.com"))
    True
    >>> bool(re.search(domain_pattern(["dropbox.com"]), "notdropbox.com"))
    False
    """
    if not domains:
        return None
    return r"(?:^|\.)(?:" + "|".join(re.escape(d.lower()) for d in domains) + r")$"


def in_domains(host: pl.Expr, domains: tuple[str, ...] | list[str]) -> pl.Expr:
    pattern = domain_pattern(domains)
    return pl.lit(False) if pattern is None else host.str.contains(pattern).fill_null(False)


# A URL up to its host: the scheme, if any, and the user name and password, if any, which end
# at the authority's last ``@`` (as browsers read it).
_BEFORE_HOST = r"^(?:[a-z][a-z0-9+.-]*://)?(?:[^/?#]*@)?"


def url_host(url: pl.Expr) -> pl.Expr:
    """Lower-cased host of a URL (``https://www.Dropbox.com/x`` -> ``www.dropbox.com``,
    ``https://me@dropbox.com/`` -> ``dropbox.com``); null when there is none."""
    return url.str.to_lowercase().str.extract(_BEFORE_HOST + r"([^/:?#@]*)", 1).replace("", None)


def url_in_domains(url: pl.Expr, domains: tuple[str, ...] | list[str]) -> pl.Expr:
    """``in_domains(url_host(url), domains)`` in one pass over the URL, without taking the
    host out or lower-casing the URL (a day's web traffic: 0.12 s for the four lists; the
    host alone took 0.2 s). Letters are compared by Unicode's simple case folding.

    >>> www = pl.lit("https://WWW.Dropbox.com:443/x")
    >>> pl.select(url_in_domains(www, ["dropbox.com"])).item()
    True
    >>> lookalike = pl.lit("https://dropbox.com@files.example/x")
    >>> pl.select(url_in_domains(lookalike, ["dropbox.com"])).item()
    False
    """
    if not domains:
        return pl.lit(False)
    names = "|".join(re.escape(d.lower()) for d in domains)
    # The host is one of the domains, or ends with a dot and one; after it, a port perhaps,
    # then the path, query or fragment, or the end. Neither holds an ``@``, so the host is
    # the one after the last ``@``, as ``url_host`` reads it.
    pattern = "(?i)" + _BEFORE_HOST + r"(?:[^/:?#@]*\.)?(?:" + names + r")(?::[^/?#@]*)?(?:[/?#]|$)"
    return url.str.contains(pattern).fill_null(False)


def address_domain(address: pl.Expr) -> pl.Expr:
    return address.str.to_lowercase().str.extract(r"@([^@>\s]+)\s*>?$", 1)


def term_pattern(term: str) -> str:
    """Pattern for one keyword; Latin words must stand alone and match in any ASCII case
    (``CAD`` matches ``cad_drawing`` but not ``decade``), Japanese terms match anywhere.

    >>> term_pattern("CAD")
    '(?:^|[^a-zA-Z0-9])[cC][aA][dD](?:[^a-zA-Z0-9]|$)'
    """
    if not term.isascii():
        return re.escape(term)
    letters = "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else re.escape(c) for c in term)
    return rf"(?:^|[^a-zA-Z0-9]){letters}(?:[^a-zA-Z0-9]|$)"


def term_candidates(text: pl.Expr, terms: tuple[str, ...]) -> pl.Expr:
    """``text`` where one of ``terms`` may occur, an empty string elsewhere: one Aho-Corasick
    pass. Few texts hold any term, so :func:`matched_terms` over this (as a column of its own)
    runs each term's pattern on the candidates only, several times faster on a day's mail."""
    if not terms:
        return pl.lit("")
    candidate = text.str.contains_any(list(terms), ascii_case_insensitive=True).fill_null(False)
    return pl.when(candidate).then(text).otherwise(pl.lit(""))


def matched_terms(text: pl.Expr, terms: tuple[str, ...]) -> pl.Expr:
    """The list of ``terms`` found in ``text`` (each at most once, in list order).

    The names are joined as one string and split, several times cheaper than a list built
    from a literal per term and row.

    >>> terms = ("CAD", "図面", "ADE")
    >>> pl.select(matched_terms(pl.lit("CAD図面 for the decade"), terms)).item().to_list()
    ['CAD', '図面']
    """
    if not terms:
        return pl.lit([], dtype=pl.List(pl.String))
    names = pl.concat_str(
        [pl.when(text.str.contains(term_pattern(t))).then(pl.lit(t)) for t in terms],
        separator=_TERM_SEPARATOR,
        ignore_nulls=True,
    )
    return (
        pl.when(names.fill_null("") == "")
        .then(pl.lit([], dtype=pl.List(pl.String)))
        .otherwise(names.str.split(_TERM_SEPARATOR))
    )


_TERM_SEPARATOR = "\x1f"  # the unit separator: not in any configured term


def local_hour(config: Config, day: date | None = None) -> pl.Expr:
    """Hour of the day in the site time zone, as a float (13:30 -> 13.5). ``day``: the local
    day every row falls on (a day's partition), so the zone's offset is looked up once when
    the clocks do not change around it."""
    tz = config.site.timezone
    local = wall_clock(pl.col("timestamp"), tz, day_offset(tz, day) if day else None)
    return local.dt.hour() + local.dt.minute() / 60.0 + local.dt.second() / 3600.0


def _hours(value) -> float:
    return value.hour + value.minute / 60.0


def time_flags(config: Config, day: date) -> list[pl.Expr]:
    """``workday``, ``after_hours`` and ``night`` for events of ``day``."""
    site = config.site
    hour = pl.col("hour")
    workday = workday_expr(pl.col("local_date"), site, day, day)
    in_hours = (hour >= _hours(site.workday_start)) & (hour < _hours(site.workday_end))
    night_start, night_end = _hours(site.night_start), _hours(site.night_end)
    if night_start > night_end:
        night = (hour >= night_start) | (hour < night_end)
    else:
        night = (hour >= night_start) & (hour < night_end)
    return [
        workday.alias("workday"),
        (~workday | ~in_hours).alias("after_hours"),
        night.alias("night"),
    ]


def effective_level(config: Config) -> pl.Expr:
    """The stricter of the classification column and the path's folder rule."""
    rank = pl.col("classification").replace_strict(LEVEL_RANK, default=0, return_dtype=pl.Int8)
    folders = sorted(config.lists.path_classification.items())
    if folders:
        # One Aho-Corasick pass finds the paths that hold a folder name at all (few do); the
        # folder patterns run on those alone (the others are null to them): 0.38 -> 0.24 s
        # over a day's file access.
        named = pl.col("path").str.contains_any([folder for folder, _ in folders])
        path = pl.when(named).then(pl.col("path"))
        for folder, level in folders:
            marker = r"(?:^|[\\/])" + re.escape(folder) + r"(?:[\\/]|$)"
            rank = pl.max_horizontal(
                rank,
                pl.when(path.str.contains(marker)).then(LEVEL_RANK[level]).otherwise(0),
            )
    by_rank = {r: level for level, r in LEVEL_RANK.items()}
    return rank.replace_strict(by_rank, default=None, return_dtype=pl.String).alias("level")


def share_of(path: pl.Expr) -> pl.Expr:
    r"""The share of a UNC path (``\\fs01\rnd\x.docx`` -> ``rnd``); null for other paths."""
    return path.str.extract(r"^[\\/]{2}[^\\/]+[\\/]([^\\/]+)", 1).str.to_lowercase()


# ---------------------------------------------------------------------------------------------
# Annotated events: what the rules and the reasons see


def annotate(
    source: str, events: pl.LazyFrame, config: Config, day: date, roster: pl.LazyFrame
) -> pl.LazyFrame:
    """Canonical events of one day plus derived columns (local hour, after-hours, night, …)."""
    lists = config.lists
    frame = events.with_columns(hour=local_hour(config, day)).with_columns(time_flags(config, day))
    if source == "file_access":
        frame = frame.with_columns(effective_level(config), share=share_of(pl.col("path")))
    elif source == "web":
        # The flags come from the URL, and the host after them: a filter on the flags (as in
        # the rules) then goes below the host, which is taken out of the few rows left.
        url = pl.col("url")
        frame = frame.with_columns(
            personal_site=url_in_domains(url, lists.personal_cloud + lists.file_transfer)
            & ~url_in_domains(url, lists.sanctioned_cloud),
            job_site=url_in_domains(url, lists.job_sites),
            expert_network=url_in_domains(url, lists.expert_networks),
            leak_site=url_in_domains(
                url, lists.leak_sites + lists.paste_sites + lists.anonymous_upload
            ),
        ).with_columns(domain=url_host(url))
    elif source == "mail":
        frame = _annotate_mail(frame, config, roster)
    return frame


def _annotate_mail(frame: pl.LazyFrame, config: Config, roster: pl.LazyFrame) -> pl.LazyFrame:
    lists = config.lists
    internal = domain_pattern(config.site.internal_domains)
    addresses = pl.concat_list(
        pl.col("recipients").fill_null([]),
        pl.col("cc").fill_null([]),
        pl.col("bcc").fill_null([]),
    ).list.eval(pl.element().str.to_lowercase().str.strip_chars())
    domains = addresses.list.eval(pl.element().str.extract(r"@([^@>\s]+)\s*>?$", 1))
    keep = pl.element().is_not_null()
    if internal:
        keep = keep & ~pl.element().str.contains(internal)
    free = domain_pattern(lists.free_mail_domains)
    rival = domain_pattern(lists.competitor_domains)
    own = roster.select(
        "user",
        own_personal=pl.col("personal_emails").list.eval(pl.element().str.to_lowercase()),
    )
    # Terms are looked for in mail that leaves the company only (the others' keywords and code
    # names are null): the text of other mail is null before it is put together and searched,
    # which spares the search 92 % of a day's mail.
    external_only = pl.col("external")
    text = pl.concat_str(
        [
            pl.when(external_only).then(pl.col("subject").fill_null("")),
            pl.when(external_only).then(pl.col("attachment_names").fill_null([]).list.join(" ")),
            pl.when(external_only).then(pl.col("body").fill_null("")),
        ],
        separator=" ",
    )
    outbound = pl.col("direction") == "outbound"
    # ``external`` comes first, on a step of its own: a filter on it (the external mail
    # the features stage keeps) then goes below the rest, which is worked out for the few
    # percent of mail that leaves the company only.
    return (
        frame.with_columns(addresses=addresses, domains=domains)
        .with_columns(external_domains=pl.col("domains").list.eval(pl.element().filter(keep)))
        .with_columns(external=outbound & (pl.col("external_domains").list.len() > 0))
        .join(own, on="user", how="left", maintain_order="left")
        .with_columns(
            to_own_personal=pl.col("addresses")
            .list.set_intersection(pl.col("own_personal").fill_null([]))
            .list.len()
            > 0,
            to_free_mail=pl.col("external_domains")
            .list.eval(pl.element().str.contains(free) if free else pl.lit(False))
            .list.any()
            .fill_null(False),
            to_competitor=pl.col("external_domains")
            .list.eval(pl.element().str.contains(rival) if rival else pl.lit(False))
            .list.any()
            .fill_null(False),
            has_attachments=pl.col("attachments").fill_null(0) > 0,
        )
        .with_columns(_text=text)
        .with_columns(
            _keyword_text=term_candidates(pl.col("_text"), lists.technical_keywords),
            _code_name_text=term_candidates(pl.col("_text"), lists.code_names),
        )
        .with_columns(
            keywords=pl.when(pl.col("external")).then(
                matched_terms(pl.col("_keyword_text"), lists.technical_keywords)
            ),
            code_names=pl.when(pl.col("external")).then(
                matched_terms(pl.col("_code_name_text"), lists.code_names)
            ),
            to_personal=pl.col("external") & (pl.col("to_own_personal") | pl.col("to_free_mail")),
        )
        .drop("own_personal", "_text", "_keyword_text", "_code_name_text")
    )


def load_day_events(
    store: EventStore, day: date, config: Config, roster: pl.LazyFrame
) -> dict[str, pl.LazyFrame]:
    """Annotated events of ``day`` per source (sources with no partition are left out)."""
    out: dict[str, pl.LazyFrame] = {}
    for source in ("logon", "file_access", "print", "mail", "web", "device"):
        path = store.partition("events", source, day)
        if path.exists():
            out[source] = annotate(source, pl.scan_parquet(io_path(path)), config, day, roster)
    return out


# ---------------------------------------------------------------------------------------------
# Per-day features


def _sum_if(condition: pl.Expr, value: pl.Expr | None = None) -> pl.Expr:
    if value is None:
        return condition.cast(pl.Int64).sum()
    return _saturating_sum(pl.when(condition).then(value.fill_null(0)).otherwise(0))


# Sums of sizes stop at 2**53 (8 PiB, where floating point stops being exact) rather than wrap
# round to small or negative numbers (two copies of 2**63 - 1 bytes summed to 15 in 64-bit
# integers); sums of these over up to a thousand days (a lookback's weeks) still fit.
_SUM_CAP = float(1 << 53)


def _saturating_sum(value: pl.Expr) -> pl.Expr:
    """The sum of an integer column, in floating point and capped, as an integer.

    >>> pl.select(_saturating_sum(pl.lit(pl.Series([2**62, 2**62, 2**62])))).item() == 2**53
    True
    """
    return value.cast(pl.Float64).sum().clip(upper_bound=_SUM_CAP).cast(pl.Int64)


def day_features(
    events: dict[str, pl.LazyFrame], external_mail: pl.LazyFrame | None = None
) -> pl.LazyFrame:
    """One row per person active on the day, every stored feature filled (0 when absent).

    Every mail feature counts mail that leaves the company, so they are drawn from the
    external mail alone: ``external_mail`` when given (already collected), else filtered from
    ``events["mail"]``."""
    parts: list[pl.LazyFrame] = []
    activity = [
        frame.filter(pl.col("direction") == "outbound") if source == "mail" else frame
        for source, frame in events.items()
    ]
    if activity:
        stamps = pl.concat(
            [f.select(*KEY, "after_hours", "night") for f in activity], how="vertical"
        )
        parts.append(
            stamps.group_by(KEY).agg(
                events=pl.len(),
                after_hours_events=_sum_if(pl.col("after_hours")),
                after_hours_share=pl.col("after_hours").mean(),
                night_events=_sum_if(pl.col("night")),
            )
        )
    if "file_access" in events:
        files = events["file_access"]
        action, dest, size = pl.col("action"), pl.col("destination"), pl.col("bytes")
        removable = dest == "removable"
        parts.append(
            files.group_by(KEY).agg(
                files_read=_sum_if(action.is_in(["open", "read"])),
                files_read_bytes=_sum_if(action.is_in(["open", "read"]), size),
                files_downloaded=_sum_if(action == "download"),
                files_downloaded_bytes=_sum_if(action == "download", size),
                files_copied=_sum_if(action.is_in(["copy", "move"]) & ~removable.fill_null(False)),
                files_copied_bytes=_sum_if(
                    action.is_in(["copy", "move"]) & ~removable.fill_null(False), size
                ),
                removable_files=_sum_if(removable.fill_null(False)),
                removable_bytes=_sum_if(removable.fill_null(False), size),
                cloud_uploads=_sum_if((action == "upload") | (dest == "cloud").fill_null(False)),
                cloud_upload_bytes=_sum_if(
                    (action == "upload") | (dest == "cloud").fill_null(False), size
                ),
                top_secret_events=_sum_if(pl.col("level") == "top_secret"),
                secret_events=_sum_if(pl.col("level") == "secret"),
            )
        )
        parts.append(
            files.filter(pl.col("night"))
            .group_by(*KEY, pl.col("hour").floor())
            .agg(n=pl.len())
            .group_by(KEY)
            .agg(night_peak_hour=pl.col("n").max())
        )
    if "device" in events:
        parts.append(
            events["device"]
            .group_by(KEY)
            .agg(usb_connects=_sum_if(pl.col("activity") == "connect"))
        )
    if "web" in events:
        upload = (pl.col("action") == "upload") & pl.col("personal_site")
        parts.append(
            events["web"]
            .group_by(KEY)
            .agg(
                personal_uploads=_sum_if(upload),
                personal_upload_bytes=_sum_if(upload, pl.col("bytes_out")),
                job_site_visits=_sum_if(pl.col("job_site")),
                expert_network_visits=_sum_if(pl.col("expert_network")),
                leak_site_requests=_sum_if(pl.col("leak_site")),
                leak_site_uploads=_sum_if(pl.col("leak_site") & (pl.col("action") == "upload")),
            )
        )
    if "print" in events:
        pages = pl.col("pages").fill_null(0) * pl.col("copies").fill_null(1).clip(lower_bound=1)
        parts.append(
            events["print"]
            .group_by(KEY)
            .agg(print_jobs=pl.len(), printed_pages=_saturating_sum(pages))
        )
    if "mail" in events:
        if external_mail is None:
            external_mail = events["mail"].filter(is_external_mail())
        parts.append(
            external_mail.filter(pl.col("user").is_not_null())  # every row external
            .group_by(KEY)
            .agg(
                external_mails=pl.len().cast(pl.Int64),
                external_attachments=pl.col("attachments").fill_null(0).sum(),
                external_attachment_bytes=_saturating_sum(pl.col("attachment_bytes").fill_null(0)),
                personal_mails=_sum_if(pl.col("to_personal") & pl.col("has_attachments")),
                competitor_mails=_sum_if(pl.col("to_competitor")),
                technical_mails=_sum_if(
                    (pl.col("keywords").list.len() > 0) | (pl.col("code_names").list.len() > 0)
                ),
            )
        )
    if "logon" in events:
        parts.append(
            events["logon"]
            .group_by(KEY)
            .agg(
                remote_logons=_sum_if(
                    (pl.col("activity") == "logon") & pl.col("remote").fill_null(False)
                )
            )
        )
    if not parts:
        return empty_features().lazy()
    merged = parts[0]
    for part in parts[1:]:
        merged = merged.join(part, on=list(KEY), how="full", coalesce=True)
    missing = [pl.lit(0).alias(n) for n in STORED_FEATURES if n not in merged.collect_schema()]
    return (
        merged.with_columns(missing)
        .select(*KEY, *STORED_FEATURES)
        .with_columns(
            [pl.col(n).fill_null(0).cast(pl.Float64) for n in STORED_FEATURES],
        )
        .sort(KEY)
    )


def empty_features() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            "user": pl.String,
            "local_date": pl.Date,
            **dict.fromkeys(STORED_FEATURES, pl.Float64),
        }
    )


def day_touches(events: dict[str, pl.LazyFrame]) -> pl.LazyFrame:
    """Systems and shares each person touched on the day, with event counts."""
    if "file_access" not in events:
        return pl.LazyFrame(
            schema={
                "user": pl.String,
                "local_date": pl.Date,
                "kind": pl.String,
                "item": pl.String,
                "n": pl.UInt32,
            }
        )
    files = events["file_access"]
    systems = files.select(*KEY, kind=pl.lit("system"), item=pl.col("system").str.to_lowercase())
    shares = files.select(*KEY, kind=pl.lit("share"), item=pl.col("share"))
    return (
        pl.concat([systems, shares])
        .filter(pl.col("item").is_not_null() & (pl.col("item") != ""))
        .group_by(*KEY, "kind", "item")
        .agg(n=pl.len())
        .sort(*KEY, "kind", "item")
    )


def roster_lazy(store: EventStore) -> pl.LazyFrame:
    roster = pl.scan_parquet(io_path(store.roster_path()))
    if "last_day_source" not in roster.collect_schema().names():
        # A roster stored before last days said where they came from: all HR's.
        recorded = pl.when(pl.col("last_day").is_not_null()).then(pl.lit("hr"))
        roster = roster.with_columns(last_day_source=recorded)
    return roster


INPUTS_FILE = "inputs.sha256"


def roster_digest(store: EventStore) -> str:
    """Digest of the roster columns features depend on (who has which private addresses)."""
    if not store.roster_path().exists():
        return ""
    roster = pl.read_parquet(io_path(store.roster_path()), columns=["user", "personal_emails"])
    text = roster.sort("user").with_columns(pl.col("personal_emails").list.join(";")).write_csv()
    return hashlib.sha256(text.encode()).hexdigest()


def inputs_digest(
    store: EventStore, day: date, config: Config, roster: str, stamps: list[str] | None = None
) -> str:
    """What a day's features were computed from: its event partitions (``stamps``, from
    ``EventStore.event_stamps``), the site config and the roster. A stored feature partition
    with another digest is stale."""
    if stamps is None:
        stamps = store.event_stamps([day])[day]
    return hashlib.sha256(
        "\n".join([config.model_dump_json(), roster, *stamps]).encode()
    ).hexdigest()


def build_features(store: EventStore, day: date, config: Config, digest: str | None = None) -> int:
    """Compute and store the day's user-day features, touches and external mail (the
    annotated mail that leaves the company, which the mail rules read); returns people
    active."""
    events = load_day_events(store, day, config, roster_lazy(store))
    external = events["mail"].filter(is_external_mail()).collect() if "mail" in events else None
    features, touches = pl.collect_all(
        [day_features(events, None if external is None else external.lazy()), day_touches(events)]
    )
    store.write_partition("features", USER_DAY, day, features)
    store.write_partition("features", TOUCHES, day, touches)
    if external is not None:
        store.write_partition("features", EXTERNAL_MAIL, day, external)
    else:
        remove_tree(store.partition("features", EXTERNAL_MAIL, day).parent)
    if digest is None:
        digest = inputs_digest(store, day, config, roster_digest(store))
    store.partition("features", USER_DAY, day, INPUTS_FILE).write_text(digest)
    return features.height


def feature_digests(
    store: EventStore, days: list[date], config: Config
) -> dict[date, tuple[str, bool]]:
    """For each of ``days`` that has events: the digest its features must be computed from,
    and whether the stored features were (the stamp beside them matches)."""
    roster = roster_digest(store)
    stamps = store.event_stamps(days)
    out = {}
    for day in days:
        if not stamps[day]:
            continue
        digest = inputs_digest(store, day, config, roster, stamps[day])
        stamp = store.partition("features", USER_DAY, day, INPUTS_FILE)
        out[day] = (digest, stamp.exists() and stamp.read_text() == digest)
    return out


def ensure_features(store: EventStore, days: list[date], config: Config) -> list[date]:
    """Build features for ``days`` that have events and no feature partition, or one computed
    from other inputs (events re-ingested, site config or roster changed)."""
    built = []
    for day, (digest, fresh) in feature_digests(store, days, config).items():
        if not fresh:
            build_features(store, day, config, digest)
            built.append(day)
    return built


def kept_external_mail(
    store: EventStore, start: date, end: date, config: Config
) -> dict[date, pl.LazyFrame]:
    """The external mail :func:`build_features` kept, for the days whose features were
    computed from the events, roster and site config in hand (a stale copy is not used)."""
    files = {
        date.fromisoformat(p.parent.name[5:]): p
        for p in store.existing("features", EXTERNAL_MAIL, _span(start, end))
    }
    if not files:
        return {}
    return {
        day: pl.scan_parquet(io_path(files[day]))
        for day, (_, fresh) in feature_digests(store, sorted(files), config).items()
        if fresh
    }


# ---------------------------------------------------------------------------------------------
# Baselines and the evidence frame


def _window_items(touches: pl.LazyFrame, window: int, first_loaded: date) -> pl.LazyFrame:
    """new_systems / new_shares / new_item_events per user-day: items not touched in the
    ``window`` days before. Only days whose whole window is loaded can tell what is new."""
    gap = (
        pl.col("local_date") - pl.col("local_date").shift(1).over("user", "kind", "item")
    ).dt.total_days()
    known = pl.col("local_date") >= pl.lit(first_loaded + timedelta(days=window))
    # ``over`` keeps each item's rows in frame order, so date order is all the gap needs; a
    # sort on the text keys as well cost 0.4 s of 1.2 over 57 days at 10,000 people.
    flagged = (
        touches.sort("local_date", maintain_order=True)
        .with_columns(new=(gap.is_null() | (gap > window)) & known)
        .filter(pl.col("new"))
    )
    return _new_item_counts(flagged)


def _day_items(touches: pl.LazyFrame, day: date, window: int) -> pl.LazyFrame:
    """:func:`_window_items` of ``day`` alone: its touches of items not touched in the
    ``window`` days before (``touches`` holds those days and ``day``)."""
    before = pl.col("local_date").is_between(day - timedelta(days=window), day, closed="left")
    seen = touches.filter(before).select("user", "kind", "item").unique()
    fresh = touches.filter(pl.col("local_date") == day).join(
        seen, on=["user", "kind", "item"], how="anti"
    )
    return _new_item_counts(fresh)


def _new_item_counts(new: pl.LazyFrame) -> pl.LazyFrame:
    """The new-item features per user-day from the touches of new items."""
    return new.group_by(KEY).agg(
        new_systems=_sum_if(pl.col("kind") == "system"),
        new_shares=_sum_if(pl.col("kind") == "share"),
        new_item_events=pl.max_horizontal(
            _sum_if(pl.col("kind") == "system", pl.col("n")),
            _sum_if(pl.col("kind") == "share", pl.col("n")),
        ),
        new_items=pl.col("item").unique().sort(),
    )


def peer_groups(roster: pl.LazyFrame, min_size: int) -> pl.LazyFrame:
    """Peer group per person: department and role, or the department alone when fewer than
    ``min_size`` people share the role there."""
    size = pl.len().over("department", "role")
    return roster.select(
        "user",
        peer_group=pl.when(size >= min_size)
        .then(pl.concat_str("department", "role", separator="/"))
        .otherwise(pl.col("department")),
    )


BASELINES = "baselines"  # features/baselines/date=D: the day's rows with their baselines
BASELINE_INPUTS = "baselines.sha256"
# Bump when the baseline computation changes, so cached days are computed again.
_BASELINE_VERSION = "2"


def evidence_frame(
    store: EventStore,
    start: date,
    end: date,
    window: int,
    min_history: int,
    min_peer: int,
    training_days: int = 0,
    users: Collection[str] | None = None,
) -> pl.DataFrame:
    """User-days from ``start - training_days`` to ``end`` with their past-only baselines, in
    ``KEY`` order.

    Rows before ``start`` are the model's training days. Each row's baselines use only the
    ``window`` days before it, so a day's rows never depend on the range asked for; they are
    computed once per day and kept in the store (``ensure_baselines``), so a daily run
    computes one new day. ``users`` keeps only those people's rows (a shard); peer baselines
    are drawn from everyone, so a person's row is the same in a shard as in the whole.
    """
    days = _span(start - timedelta(days=training_days), end)
    ensure_baselines(store, days, window, min_history, min_peer)
    frame = kept_baselines(store, days, None, users)
    return pl.DataFrame() if frame is None else frame.sort(KEY).collect()


def kept_baselines(
    store: EventStore,
    days: list[date],
    columns: list[str] | None = None,
    users: Collection[str] | None = None,
) -> pl.LazyFrame | None:
    """The kept baseline rows of ``days`` (all columns, or ``columns``), only ``users``'s if
    given; None when no day has any."""
    files = store.existing("features", BASELINES, days)
    if not files:
        return None
    frame = pl.scan_parquet(io_paths(files))
    if columns is not None:
        frame = frame.select(columns)
    if users is not None:
        frame = frame.filter(pl.col("user").is_in(list(users)))
    return frame


def _baseline_stamps(
    store: EventStore, days: list[date], window: int, min_history: int, min_peer: int
) -> dict[date, str]:
    """What each day's baselines are computed from: the inputs digests of its features and of
    the ``2 × window`` days before (events, site config, private addresses; new items look
    back two windows), the roster's peer groups and the baseline settings. Empty for a day
    without features."""
    span = _span(min(days) - timedelta(days=2 * window), max(days))
    stamped = {
        date.fromisoformat(p.parent.name[5:]): p.read_text()
        for p in store.existing("features", USER_DAY, span, INPUTS_FILE)
    }
    present = {
        day: stamped.get(day, "features without an inputs stamp")
        for day in (
            date.fromisoformat(p.parent.name[5:])
            for p in store.existing("features", USER_DAY, span)
        )
    }
    groups = ""
    if store.roster_path().exists():
        roster = pl.read_parquet(
            io_path(store.roster_path()), columns=["user", "department", "role"]
        )
        text = roster.sort("user").write_csv()
        groups = hashlib.sha256(text.encode()).hexdigest()
    out = {}
    for day in days:
        if day not in present:
            out[day] = ""
            continue
        inputs = [present.get(day - timedelta(days=k), "-") for k in range(2 * window + 1)]
        settings = f"{_BASELINE_VERSION}:{window}:{min_history}:{min_peer}:{_DECIMALS}"
        out[day] = hashlib.sha256("\n".join([settings, groups, *inputs]).encode()).hexdigest()
    return out


def ensure_baselines(
    store: EventStore, days: list[date], window: int, min_history: int, min_peer: int
) -> list[date]:
    """Compute and keep the baselines of ``days`` that have features and no kept baselines,
    or baselines computed from other inputs; returns the days computed."""
    if not days:
        return []
    wanted = _baseline_stamps(store, days, window, min_history, min_peer)
    kept = {
        date.fromisoformat(p.parent.name[5:]): p.read_text()
        for p in store.existing("features", BASELINES, days, BASELINE_INPUTS)
    }
    computed = []
    for day in days:
        if not wanted[day] or kept.get(day) == wanted[day]:
            continue
        computed.append(day)
    if not computed:
        return []
    # One pass over the span of the stale days (usually just the newest).
    frame = compute_baselines(
        store,
        computed[0],
        computed[-1],
        window,
        min_history,
        min_peer,
        _kept_new_items(store, days, computed, window, wanted),
    )
    for day in computed:
        store.write_partition("features", BASELINES, day, frame.filter(pl.col("local_date") == day))
        store.partition("features", BASELINES, day, BASELINE_INPUTS).write_text(wanted[day])
    return computed


def _kept_new_items(
    store: EventStore,
    days: list[date],
    computed: list[date],
    window: int,
    wanted: dict[date, str],
) -> pl.LazyFrame | None:
    """For one day's baselines, the new-item counts of the ``window`` days before it, as their
    kept baselines hold them: when ``computed`` (the stale days among ``days``) is that one day
    and the window is among ``days``, every day of it with features has baselines computed from
    the inputs in hand (a daily run's case: ``days`` holds the training days). None otherwise;
    the counts are then worked out again from two windows of touches (0.24 s of 0.55 at 10,000
    people)."""
    if len(computed) != 1:
        return None
    before = _span(computed[0] - timedelta(days=window), computed[0] - timedelta(days=1))
    if not set(before) <= set(days):
        return None
    active = [d for d in before if wanted[d]]
    return kept_baselines(store, active, [*KEY, *WINDOW_FEATURES]) if active else None


def compute_baselines(
    store: EventStore,
    first: date,
    last: date,
    window: int,
    min_history: int,
    min_peer: int,
    earlier_items: pl.LazyFrame | None = None,
) -> pl.DataFrame:
    """The user-days from ``first`` to ``last`` with their baselines from the ``window`` days
    before each: each feature's own median and maximum and its peer group's mean (the own
    ones are the peer's while a person has fewer than ``min_history`` active days), and how far
    the day is from each in standard deviations of ``log1p`` (``__own_z``, ``__peer_z``).
    Whether an item is new on a day looks a further ``window`` days back, so the new-item
    counts that the baselines are drawn from are complete; for one day, ``earlier_items``
    may give those of the ``window`` days before it (:func:`_kept_new_items`), and only the
    day's own are worked out."""
    loaded = first - timedelta(days=window)
    one_day = earlier_items is not None and first == last
    touched = loaded if one_day else loaded - timedelta(days=window)
    feature_files = store.existing("features", USER_DAY, _span(loaded, last))
    touch_files = store.existing("features", TOUCHES, _span(touched, last))
    if not feature_files:
        return pl.DataFrame()
    roster = roster_lazy(store)
    features = pl.scan_parquet(io_paths(feature_files))
    touches = pl.scan_parquet(io_paths(touch_files)) if touch_files else day_touches({})
    if one_day:
        items = pl.concat(
            [earlier_items, _day_items(touches, first, window)], how="diagonal_relaxed"
        )
    else:
        items = _window_items(touches, window, touched)
    frame = (
        features.join(items, on=list(KEY), how="left")
        .with_columns(
            [pl.col(n).fill_null(0).cast(pl.Float64) for n in WINDOW_FEATURES],
            new_items=pl.col("new_items").fill_null([]),
        )
        .join(peer_groups(roster, min_peer), on="user", how="left")
        .with_columns(pl.col("peer_group").fill_null("(not on roster)"))
        .sort("user", "local_date")
    )
    logs = [pl.col(n).log1p().alias(f"{n}__log") for n in FEATURE_NAMES]
    frame = frame.with_columns(logs)
    own_stats = [
        pl.len().alias("history_days"),
        *[pl.col(n).median().alias(f"{n}__own") for n in FEATURE_NAMES],
        *[pl.col(n).max().alias(f"{n}__own_max") for n in FEATURE_NAMES],
        *[pl.col(f"{n}__log").mean().alias(f"{n}__own_lm") for n in FEATURE_NAMES],
        *[pl.col(f"{n}__log").std(ddof=0).alias(f"{n}__own_ls") for n in FEATURE_NAMES],
    ]
    if first == last:
        # One day (a daily run): its window is every loaded day before it, so one grouping
        # gives what the rolling windows give for that day, without computing a window for
        # each of the loaded days that are only there to fill it.
        own = (
            frame.filter(pl.col("local_date") < first)
            .group_by("user")
            .agg(own_stats)
            .with_columns(pl.lit(first).alias("local_date"))
        )
    else:
        own = (
            frame.rolling(
                index_column="local_date", period=f"{window}d", closed="left", group_by="user"
            )
            .agg(own_stats)
            .unique(KEY, keep="first")
        )
    sums = frame.group_by("peer_group", "local_date").agg(
        [
            pl.len().alias("peer_n"),
            *[pl.col(n).sum().alias(f"{n}__s") for n in FEATURE_NAMES],
            *[pl.col(f"{n}__log").sum().alias(f"{n}__ls") for n in FEATURE_NAMES],
            *[(pl.col(f"{n}__log") ** 2).sum().alias(f"{n}__lss") for n in FEATURE_NAMES],
        ]
    )
    peer = (
        sums.sort("peer_group", "local_date")
        .rolling(
            index_column="local_date",
            period=f"{window}d",
            closed="left",
            group_by="peer_group",
        )
        .agg(pl.all().exclude("local_date").sum())
        .unique(["peer_group", "local_date"], keep="first")
    )
    peer_cols = []
    for n in FEATURE_NAMES:
        count = pl.col("peer_n")
        mean_log = pl.col(f"{n}__ls") / count
        var_log = (pl.col(f"{n}__lss") / count - mean_log**2).clip(lower_bound=0)
        peer_cols += [
            (pl.col(f"{n}__s") / count).alias(f"{n}__peer"),
            mean_log.alias(f"{n}__peer_lm"),
            var_log.sqrt().alias(f"{n}__peer_ls"),
        ]
    peer = peer.select("peer_group", "local_date", pl.col("peer_n").alias("peer_days"), *peer_cols)
    enough = pl.col("history_days").fill_null(0) >= min_history
    joined = frame.join(own, on=list(KEY), how="left").join(
        peer, on=["peer_group", "local_date"], how="left"
    )
    baseline_cols = [
        pl.when(enough).then(pl.lit("own")).otherwise(pl.lit("peer")).alias("baseline")
    ]
    for n in FEATURE_NAMES:
        x = pl.col(f"{n}__log")
        own_lm = pl.when(enough).then(pl.col(f"{n}__own_lm")).otherwise(pl.col(f"{n}__peer_lm"))
        own_ls = pl.when(enough).then(pl.col(f"{n}__own_ls")).otherwise(pl.col(f"{n}__peer_ls"))
        baseline_cols += [
            pl.when(enough)
            .then(pl.col(f"{n}__own"))
            .otherwise(pl.col(f"{n}__peer"))
            .alias(f"{n}__own"),
            pl.when(enough)
            .then(pl.col(f"{n}__own_max"))
            .otherwise(pl.col(f"{n}__peer"))
            .alias(f"{n}__own_max"),
            _z(x, own_lm, own_ls).alias(f"{n}__own_z"),
            _z(x, pl.col(f"{n}__peer_lm"), pl.col(f"{n}__peer_ls")).alias(f"{n}__peer_z"),
        ]
    drop = [
        f"{n}__{s}"
        for n in FEATURE_NAMES
        for s in ("log", "own_lm", "own_ls", "peer_lm", "peer_ls")
    ]
    # Parallel sums differ in the last bits from run to run; rounding makes reruns identical.
    baselines = [
        pl.col(f"{n}__{s}").fill_nan(None).round(_DECIMALS)
        for n in FEATURE_NAMES
        for s in ("own", "own_max", "peer", "own_z", "peer_z")
    ]
    return (
        joined.filter(pl.col("local_date") >= first)
        .with_columns(baseline_cols)
        .drop(drop)
        .with_columns(baselines)
        .with_columns(pl.col("history_days").fill_null(0).cast(pl.Int64))
        .sort(KEY)
        .collect()
    )


def _span(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


# Deviations are measured in log space; a floor on the spread keeps a person who always does
# exactly the same thing from turning a one-file change into a huge z.
_Z_FLOOR = 0.5
_DECIMALS = 6
_Z_CLIP = 10.0


def _z(x: pl.Expr, mean: pl.Expr, spread: pl.Expr) -> pl.Expr:
    z = (x - mean) / pl.max_horizontal(spread.fill_null(0), pl.lit(_Z_FLOOR))
    return z.fill_null(0).fill_nan(0).clip(-_Z_CLIP, _Z_CLIP)
