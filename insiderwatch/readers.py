"""Landing files to frames of strings, with exact line numbers.

Every reader returns the same thing, a :class:`RawBatch`: one string column per header column,
``_line`` (the physical line where the record starts; for Parquet the row number), and the
records that could not be split into fields at all (wrong field count, undecodable bytes, broken
JSON), each with its line and reason. A file that cannot be read at all raises
:class:`FileError`, whose message names the file and line.

CSV goes through polars first. Polars silently fills short rows with nulls, so the fast result is
accepted only when the separator and newline counts of the file match what the parsed records
account for; otherwise the file is re-read with Python's ``csv`` module, which reports each bad
record exactly. Encodings: UTF-8 with or without BOM, CP932 (Shift_JIS); in a file that mixes the
two, the minority lines are rejected with a reason rather than turned into mojibake.

What one file may cost is bounded (``[limits]`` in the site config): its bytes as read, after
decompression; how many times over its gzip data inflates; and the bytes of one line. A file
over a bound fails with :class:`FileError` before it is read into memory.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import polars as pl
from isal import isal_zlib  # zlib's format, twice as fast to inflate

if TYPE_CHECKING:
    from insiderwatch.config import LimitsConfig

LINE = "_line"
# Columns an adapter's staged Parquet files carry (see insiderwatch.adapters): the vendor file
# and line a row came from, and for a record the adapter could not split, why and its text.
ORIGIN_FILE = "_origin_file"
ORIGIN_LINE = "_origin_line"
REJECT = "_reject"
REJECT_RAW = "_reject_raw"
STAGED = (ORIGIN_FILE, REJECT, REJECT_RAW)
SUFFIXES = (".csv.gz", ".csv", ".jsonl", ".parquet")
_DAY_NAME = re.compile(r"^(\d{4}-\d{2}-\d{2})$")
_BOM = b"\xef\xbb\xbf"
# Inflated bytes a stream hands out per call: a megabyte of deflate data can hold a gigabyte.
_PIECE = 8 << 20
# Inflated bytes allowed beyond ``max_gzip_ratio`` times the input, so a tiny file of a few
# kilobytes that compresses well is not taken for a bomb.
_RATIO_SLACK = 1 << 20


@cache
def default_limits() -> LimitsConfig:
    """The packaged ``[limits]``, for callers that have no site config at hand."""
    from insiderwatch.config import load_config

    return load_config().limits


def landing_suffix(name: str) -> str | None:
    """The supported format a file name ends with, in any case, or None.

    >>> landing_suffix("2024-04-01.CSV.GZ"), landing_suffix("notes.txt")
    ('.csv.gz', None)
    """
    lowered = name.lower()
    return next((s for s in SUFFIXES if lowered.endswith(s)), None)


class FileError(Exception):
    """A landing file that cannot be parsed at all."""

    def __init__(self, file: str, line: int | None, message: str) -> None:
        self.file = file
        self.line = line
        self.message = message
        where = f"{file}:{line}" if line is not None else file
        super().__init__(f"{where}: {message}")


@dataclass
class Reject:
    line: int
    raw: str
    reason: str


@dataclass
class RawBatch:
    file: str
    frame: pl.DataFrame
    rejects: list[Reject] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    encoding: str = "utf-8"

    @property
    def rows_read(self) -> int:
        return self.frame.height + len(self.rejects)


def file_day(path: Path) -> date | None:
    """The day a landing file is named for (``2024-01-02.csv.gz``), or that its folder is named
    for (``2024-01-02/part-1.parquet``), or None.

    >>> file_day(Path("web/2024-01-02/part-1.parquet")), file_day(Path("web/all.csv"))
    (datetime.date(2024, 1, 2), None)
    """
    stem = path.name
    suffix = landing_suffix(stem)
    if suffix is not None:
        stem = stem[: -len(suffix)]
    return _day_named(stem) or _day_named(path.parent.name)


def _day_named(name: str) -> date | None:
    match = _DAY_NAME.match(name)
    if not match:
        return None
    try:
        return date.fromisoformat(match.group(1))
    except ValueError:
        return None


def inside_landing(path: Path, logs: Path, rel: str) -> Path:
    """``path`` resolved, when it lies inside the landing folder; else :class:`FileError`.

    A symbolic link is followed only to a file inside the folder: a link out of it (to a
    file only root may read, say) would copy that file's lines into quarantine.
    """
    target = path.resolve()
    if not target.is_relative_to(logs.resolve()):
        what = "symbolic link" if path.is_symlink() else "reached through a symbolic link"
        raise FileError(rel, None, f"{what} out of the landing folder: refused")
    if path.is_symlink() and not target.exists():
        raise FileError(rel, None, "symbolic link to a file that does not exist")
    return target


def read_landing_file(
    path: Path,
    rel: str,
    expected: tuple[str, ...],
    required: tuple[str, ...],
    limits: LimitsConfig | None = None,
) -> RawBatch:
    """Read one landing file of any supported format into a :class:`RawBatch`."""
    limits = limits or default_limits()
    suffix = landing_suffix(path.name)
    if suffix == ".parquet":
        _check_size(path, rel, limits)
        batch = _read_parquet(path, rel)
    elif suffix == ".jsonl":
        batch = _read_jsonl(load_bytes(path, rel, limits), rel, limits)
    else:
        batch = _read_csv(load_bytes(path, rel, limits), rel, limits)
    return _check_columns(batch, expected, required)


def _check_size(path: Path, rel: str, limits: LimitsConfig) -> int:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise FileError(rel, None, f"cannot read the file ({exc.strerror})") from exc
    if size > limits.max_file_bytes:
        raise FileError(
            rel,
            None,
            f"file is {size:,} bytes, over the limit of {limits.max_file_bytes:,} for one file "
            "(limits.max_file_bytes)",
        )
    return size


def load_bytes(path: Path, rel: str, limits: LimitsConfig) -> bytes:
    """A file's bytes, inflated when it is gzip, within ``limits`` (for adapters that parse
    text themselves, as the landing readers do)."""
    _check_size(path, rel, limits)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FileError(rel, None, f"cannot read the file ({exc.strerror})") from exc
    if path.name.lower().endswith(".gz"):
        data = _gunzip(data, rel, limits)
    if not data:
        raise FileError(rel, 1, "file is empty (0 bytes): expected at least a header line")
    return data


class _Inflater:
    """Gzip data to bytes, fed in pieces. A gzip file may hold several members one after
    another (``cat a.gz b.gz``, appending log writers): each is inflated in turn, as ``gzip``
    reads them, and zero bytes padding the end are skipped. Corrupt or truncated data raises
    :class:`FileError` with the line the inflated text had reached."""

    def __init__(
        self, rel: str, limits: LimitsConfig, pieces: bool = True, whole: bool = True
    ) -> None:
        self.rel = rel
        self.member = isal_zlib.decompressobj(wbits=31)
        self.fed = False  # the current member has had input
        # Bounds: the whole output (a file read at once, not a stream read in blocks) and its
        # ratio to the input taken so far.
        self.limit = limits.max_file_bytes if whole else None
        self.ratio = limits.max_gzip_ratio
        self.taken = 0  # compressed bytes fed
        self.made = 0  # bytes inflated
        # Line breaks inflated by earlier calls, for the line an error names; counted only
        # when the data comes in pieces (a whole file is fed once).
        self.pieces = pieces
        self.lines = 0
        self.last: list[bytes] = []  # the last call's output, while its lines are not counted

    def feed(self, raw: bytes) -> list[bytes]:
        out: list[bytes] = []
        self.taken += len(raw)
        more = False  # the last call filled its piece: output may be waiting inside
        while raw or more:
            if not self.fed:
                raw = raw.lstrip(b"\x00")
                if not raw:
                    break
            self.fed = True
            room = self._room()
            try:
                piece = self.member.decompress(raw, room)
            except isal_zlib.error as exc:
                line = self.lines + sum(o.count(b"\n") for o in out) + 1
                raise FileError(self.rel, line, f"corrupt gzip data ({exc})") from exc
            self._bound(len(piece))
            out.append(piece)
            if not self.member.eof:
                raw = self.member.unconsumed_tail
                more = len(piece) == room
                continue
            raw = self.member.unused_data
            self.member = isal_zlib.decompressobj(wbits=31)
            self.fed = False
            more = False
        if self.pieces:
            self.lines += sum(o.count(b"\n") for o in out)
        else:
            self.last = out
        return out

    def _room(self) -> int:
        """Bytes the next call may inflate: one past what the bounds allow, so that going over
        is seen without inflating more. A whole file is inflated in one call when it keeps to
        them (no pieces to join); a stream in pieces."""
        used = self.taken - len(self.member.unconsumed_tail)
        room = self.ratio * used + _RATIO_SLACK - self.made
        room = min(room, self.limit - self.made) if self.limit is not None else min(room, _PIECE)
        return max(room, 0) + 1

    def _bound(self, inflated: int) -> None:
        self.made += inflated
        if self.limit is not None and self.made > self.limit:
            raise FileError(
                self.rel,
                None,
                f"gzip data inflates past {self.limit:,} bytes, the limit for one file "
                "(limits.max_file_bytes)",
            )
        used = self.taken - len(self.member.unconsumed_tail)
        if self.made > self.ratio * used + _RATIO_SLACK:
            raise FileError(self.rel, None, _bomb(self.ratio))

    def finish(self) -> None:
        if self.fed:  # a member began and never reached its end marker
            tail = self.member.flush()
            raise FileError(
                self.rel,
                self.lines + sum(o.count(b"\n") for o in [*self.last, tail]) + 1,
                "truncated gzip: the stream ends before its end marker",
            )


# Compressed bytes inflated first, on their own, to see a bomb before the whole file is: most
# bombs are one byte repeated, and inflate past the ratio from their first bytes.
_PROBE = 64 << 10


def _probe_ratio(data: bytes, rel: str, limits: LimitsConfig) -> None:
    """Refuse ``data`` when its first :data:`_PROBE` bytes alone inflate past the ratio. The
    whole file is then inflated in one call (no pieces to join), bounded by the ratio over
    its whole size; the probe keeps a bomb from reaching that bound."""
    head = data[:_PROBE]
    allowed = limits.max_gzip_ratio * len(head) + _RATIO_SLACK
    try:
        inflated = isal_zlib.decompressobj(wbits=31).decompress(head, allowed + 1)
    except isal_zlib.error:
        return  # corrupt data: the real pass says where
    if len(inflated) > allowed:
        raise FileError(rel, None, _bomb(limits.max_gzip_ratio))


def _bomb(ratio: int) -> str:
    return (
        f"gzip data inflates more than {ratio} times over (limits.max_gzip_ratio): "
        "refused as a decompression bomb"
    )


def _gunzip(data: bytes, rel: str, limits: LimitsConfig) -> bytes:
    _probe_ratio(data, rel, limits)
    inflater = _Inflater(rel, limits, pieces=False)
    pieces = inflater.feed(data)
    inflater.finish()
    # One member (the usual file) comes back as it was inflated, without a copy.
    return pieces[0] if len(pieces) == 1 else b"".join(pieces)


# --- encodings -------------------------------------------------------------------------------


@dataclass
class _Decoded:
    text: str | None  # whole-file text when every line decoded in one encoding
    encoding: str
    lines: list[str] | None = None  # per-line text when some lines were rejected
    bad_lines: dict[int, str] = field(default_factory=dict)  # line number -> reason


def _decode(data: bytes) -> _Decoded:
    if data.startswith(_BOM):
        data = data[len(_BOM) :]
        try:
            return _Decoded(data.decode("utf-8"), "utf-8-sig")
        except UnicodeDecodeError:
            return _decode_by_line(data, "utf-8")
    try:
        return _Decoded(data.decode("utf-8"), "utf-8")
    except UnicodeDecodeError:
        pass
    raw_lines = data.split(b"\n")
    utf8_lines = sum(1 for b in raw_lines if not b.isascii() and _decodes(b, "utf-8"))
    if utf8_lines == 0:
        try:
            return _Decoded(data.decode("cp932"), "cp932")
        except UnicodeDecodeError:
            return _decode_by_line(data, "cp932")
    non_utf8 = sum(1 for b in raw_lines if not _decodes(b, "utf-8"))
    return _decode_by_line(data, "utf-8" if utf8_lines >= non_utf8 else "cp932")


decode_text = _decode  # for adapters that parse text themselves (JSON exports)


def _decodes(b: bytes, encoding: str) -> bool:
    try:
        b.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


def _decode_by_line(data: bytes, encoding: str) -> _Decoded:
    lines: list[str] = []
    bad: dict[int, str] = {}
    other = "CP932" if encoding == "utf-8" else "UTF-8"
    for number, raw in enumerate(data.split(b"\n"), start=1):
        try:
            text = raw.decode(encoding)
            if encoding == "cp932" and not raw.isascii() and _decodes(raw, "utf-8"):
                bad[number] = "line is UTF-8 in a CP932 file (mixed encodings)"
        except UnicodeDecodeError:
            text = raw.decode(encoding, errors="replace")
            if _decodes(raw, "utf-8" if encoding == "cp932" else "cp932"):
                bad[number] = f"line is {other} in a {encoding.upper()} file (mixed encodings)"
            else:
                bad[number] = f"line is not valid {encoding.upper()}"
        lines.append(text)
    return _Decoded(None, encoding, lines=lines, bad_lines=bad)


# --- CSV -------------------------------------------------------------------------------------


def _read_csv(data: bytes, rel: str, limits: LimitsConfig) -> RawBatch:
    if data.startswith(_BOM):
        encoding, payload = "utf-8-sig", data[len(_BOM) :]
    else:
        encoding, payload = "utf-8", data
    # Polars checks the UTF-8 itself, so valid UTF-8 goes to it as read, never decoded in Python;
    # only when it refuses the file is the text decoded (CP932, mixed or broken encodings).
    fast = _csv_fast(payload, rel, limits)
    if fast is not None:
        return RawBatch(rel, fast, encoding=encoding)
    decoded = _decode(data)
    if decoded.text is not None:
        if not decoded.encoding.startswith("utf-8"):
            fast = _csv_fast(decoded.text.encode("utf-8"), rel, limits)
            if fast is not None:
                return RawBatch(rel, fast, encoding=decoded.encoding)
        lines = decoded.text.split("\n")
    else:
        assert decoded.lines is not None
        lines = decoded.lines
    return _csv_slow(lines, decoded.bad_lines, rel, decoded.encoding, limits)


def _first_line(text: str) -> str:
    end = text.find("\n")
    return text if end < 0 else text[:end]


def _header_fields(text: str, rel: str, limits: LimitsConfig) -> list[str]:
    first = _first_line(text).rstrip("\r")
    if len(first) > limits.max_line_bytes:
        raise FileError(rel, 1, _too_long(limits))
    if not first.strip():
        raise FileError(rel, 1, "no header line: the first line is blank")
    try:
        header = [h.strip() for h in next(csv.reader([first]))]
    except csv.Error as exc:
        raise FileError(rel, 1, f"cannot split the header into fields ({exc})") from exc
    for i, name in enumerate(header):
        if name in header[:i]:
            raise FileError(rel, 1, f"column {name!r} appears twice in the header")
    return header


def byte_counts(data: bytes, wanted: bytes, step: int = 1 << 20) -> list[int]:
    """How often each byte of ``wanted`` occurs in ``data``: ``[data.count(b) for b in
    wanted]`` in one pass, a cache-sized slice at a time (a day's mail, 221 MB, for a comma and
    a line break: 0.4 s with ``bytes.count``, 0.07 s so)."""
    view = np.frombuffer(data, dtype=np.uint8)
    counts = [0] * len(wanted)
    for start in range(0, view.size, step):
        piece = view[start : start + step]
        for k, byte in enumerate(wanted):
            counts[k] += int(np.count_nonzero(piece == byte))
    return counts


def _too_long(limits: LimitsConfig) -> str:
    return f"line longer than {limits.max_line_bytes:,} bytes (limits.max_line_bytes)"


def _csv_fast(payload: bytes, rel: str, limits: LimitsConfig) -> pl.DataFrame | None:
    """Parse UTF-8 bytes with polars; None when the file needs the exact (slow) reader.

    Polars fills a short record with nulls without a word, so the result is accepted only when
    the file's separators and line breaks are exactly those the parsed records account for.
    """
    end = payload.find(b"\n")
    if (len(payload) if end < 0 else end) > limits.max_line_bytes:
        raise FileError(rel, 1, _too_long(limits))
    try:
        first = (payload if end < 0 else payload[:end]).decode("utf-8")
    except UnicodeDecodeError:
        return None
    header = _header_fields(first, rel, limits)
    try:
        frame = pl.read_csv(payload, infer_schema=False, has_header=True, raise_if_empty=True)
    except (pl.exceptions.ComputeError, pl.exceptions.NoDataError):
        return None  # among others, bytes that are not UTF-8
    if frame.width != len(header):
        return None
    frame.columns = header
    if frame.height == 0:
        return frame.with_columns(pl.lit(None, dtype=pl.Int64).alias(LINE))
    # Counted on the UTF-8 bytes: a comma, quote or line break byte is never part of another
    # character. A comma inside a value is quoted, so a file without quotes has none.
    values = [pl.col(c).fill_null("") for c in frame.columns]
    # Polars fills a short record's missing fields from the end, so its last field is null:
    # when no record's is, none is short and the commas need no counting (reading a day's
    # file access 0.66 → 0.45 s, its mail 0.72 → 0.43 s).
    maybe_short = frame.get_column(frame.columns[-1]).null_count() > 0
    wanted = b',\n"' if maybe_short else b"\n"
    counts = dict(zip(wanted, byte_counts(payload, wanted), strict=True))
    breaks = counts[ord("\n")]
    if maybe_short:
        value_commas = (
            frame.select(
                pl.sum_horizontal([v.str.count_matches(",", literal=True) for v in values]).sum()
            ).item()
            if counts[ord('"')]
            else 0
        )
        header_commas = first.count(",")
        structural = header_commas + (frame.width - 1) * frame.height
        if counts[ord(",")] != structural + (value_commas or 0):
            return None
    physical = breaks + (0 if payload.endswith(b"\n") else 1)
    if physical == 1 + frame.height:
        # One line a record: no value holds a line break and no line is blank.
        return frame.with_columns(pl.int_range(2, frame.height + 2, dtype=pl.Int64).alias(LINE))
    embedded_newlines = frame.select(
        pl.sum_horizontal([v.str.count_matches("\n", literal=True) for v in values])
    ).to_series()
    # Physical lines: header, then each record's first line plus its embedded newlines.
    body_lines = frame.height + int(embedded_newlines.sum() or 0)
    if physical != 1 + body_lines:
        return None  # blank lines or stray breaks: let the exact reader account for them
    starts = (
        embedded_newlines.cum_sum() - embedded_newlines + pl.int_range(frame.height, eager=True) + 2
    ).cast(pl.Int64)
    return frame.with_columns(starts.alias(LINE))


def _csv_slow(
    lines: list[str], bad_lines: dict[int, str], rel: str, encoding: str, limits: LimitsConfig
) -> RawBatch:
    text = "\n".join(lines)
    header = _header_fields(text, rel, limits)
    # Python's csv module stops at 131,072 characters a field by default, and then the whole
    # file fails; a field that long is a row to quarantine (the column's own limit says why).
    csv.field_size_limit(limits.max_line_bytes)
    if 1 in bad_lines:
        raise FileError(rel, 1, f"header {bad_lines[1]}")
    width = len(header)
    columns: list[list[str]] = [[] for _ in header]
    starts: list[int] = []
    rejects: list[Reject] = []
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    next(reader)
    start = reader.line_num + 1
    while True:
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise FileError(rel, start, f"cannot split the record into fields ({exc})") from exc
        end = reader.line_num
        if not record or record == [""]:
            start = end + 1
            continue
        span_bad = [bad_lines[n] for n in range(start, end + 1) if n in bad_lines]
        raw = "\n".join(lines[start - 1 : end]).rstrip("\r")
        if span_bad:
            rejects.append(Reject(start, raw, span_bad[0]))
        elif len(record) != width:
            rejects.append(Reject(start, raw, f"expected {width} fields, found {len(record)}"))
        else:
            for column, value in zip(columns, record, strict=True):
                column.append(value)
            starts.append(start)
        start = end + 1
    data = {
        h: pl.Series(values, dtype=pl.String) for h, values in zip(header, columns, strict=True)
    }
    frame = pl.DataFrame(data).with_columns(
        pl.Series(LINE, starts, dtype=pl.Int64),
        # csv gives "" for an empty field; polars' reader gives null. Make both agree.
        *[pl.when(pl.col(h) == "").then(None).otherwise(pl.col(h)).alias(h) for h in header],
    )
    return RawBatch(rel, frame, rejects, encoding=encoding)


def iter_csv_blocks(
    path: Path,
    rel: str,
    block_bytes: int | None = 64 << 20,
    limits: LimitsConfig | None = None,
) -> Iterator[RawBatch]:
    """A large CSV (or .csv.gz) as a stream of :class:`RawBatch` blocks of about ``block_bytes``
    (None: the whole file as one block).

    Each block is parsed like a whole file (same checks, same rejects) and its line numbers
    are those of the file. A PowerShell ``#TYPE`` line before the header is skipped. Blocks
    end at a line break outside quotes, so a quoted field that spans lines stays whole.
    Memory holds one block, never the file: a line longer than ``limits.max_line_bytes`` (no
    line break in sight) fails the file rather than grow the block.
    """
    limits = limits or default_limits()
    with _open_stream(path, rel, limits) as stream:
        header = stream.readline(limits.max_line_bytes + 1)
        if len(header) > limits.max_line_bytes:
            raise FileError(rel, 1, _too_long(limits))
        if not header:
            raise FileError(rel, 1, "file is empty (0 bytes): expected at least a header line")
        if header.startswith(_BOM):
            header = header[len(_BOM) :]
        before = 1  # physical lines consumed before the block
        if header.startswith(b"#TYPE "):  # Windows PowerShell's Export-Csv type line
            header = stream.readline(limits.max_line_bytes + 1)
            before = 2
            if len(header) > limits.max_line_bytes:
                raise FileError(rel, before, _too_long(limits))
        if not header.endswith(b"\n"):
            header += b"\n"
        carry = b""
        yielded = False
        while True:
            chunk = stream.read(-1 if block_bytes is None else block_bytes)
            data = carry + chunk
            if chunk:
                cut = _block_end(data)
                if cut < 0:
                    if len(data) > limits.max_line_bytes:
                        raise FileError(rel, before + 1, _too_long(limits))
                    carry = data
                    continue
                block, carry = data[: cut + 1], data[cut + 1 :]
            else:
                block, carry = data, b""
            if block or not yielded:
                batch = _read_csv(header + block, rel, limits)
                if before > 1:
                    batch.frame = batch.frame.with_columns(pl.col(LINE) + (before - 1))
                    for reject in batch.rejects:
                        reject.line += before - 1
                before += block.count(b"\n")
                yielded = True
                yield batch
            if not chunk:
                return


def _block_end(data: bytes) -> int:
    """Index of the last line break in ``data`` that is outside quotes, or -1."""
    pos = data.rfind(b"\n")
    quotes = data.count(b'"', 0, pos + 1) if pos >= 0 else 0
    while pos >= 0 and quotes % 2:
        earlier = data.rfind(b"\n", 0, pos)
        quotes -= data.count(b'"', earlier + 1, pos + 1)
        pos = earlier
    return pos


class _GzipStream:
    """A gzip file read incrementally; corrupt or truncated data raises :class:`FileError`."""

    def __init__(self, path: Path, rel: str, limits: LimitsConfig) -> None:
        self.fh = open(path, "rb")  # noqa: SIM115 - closed in __exit__
        # A stream is read in blocks, so only the ratio bounds it, not the file's total.
        self.inflater = _Inflater(rel, limits, whole=False)
        self.buffer = b""
        self.done = False

    def __enter__(self) -> _GzipStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.fh.close()

    def _fill(self, want: int) -> None:
        # Pieces are joined once: adding each to the buffer would copy it whole every time.
        pieces = [self.buffer]
        have = len(self.buffer)
        while not self.done and have < want:
            raw = self.fh.read(1 << 20)
            if raw:
                for piece in self.inflater.feed(raw):
                    pieces.append(piece)
                    have += len(piece)
            else:
                self.done = True
                self.inflater.finish()
        if len(pieces) > 1:
            self.buffer = b"".join(pieces)

    def _take(self, n: int) -> bytes:
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out

    def read(self, n: int) -> bytes:
        if n < 0:
            self._fill(sys.maxsize)
            return self._take(len(self.buffer))
        self._fill(n)
        return self._take(n)

    def readline(self, limit: int) -> bytes:
        """The next line, or its first ``limit`` bytes when it is longer."""
        while b"\n" not in self.buffer and not self.done and len(self.buffer) < limit:
            self._fill(len(self.buffer) + (1 << 16))
        end = self.buffer.find(b"\n", 0, limit)
        return self._take(end + 1 if end >= 0 else min(limit, len(self.buffer)))


def _open_stream(path: Path, rel: str, limits: LimitsConfig):
    if path.name.lower().endswith(".gz"):
        return _GzipStream(path, rel, limits)
    return open(path, "rb")


# --- JSON lines ------------------------------------------------------------------------------


def _as_text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, list):
        return ";".join("" if v is None else str(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _read_jsonl(data: bytes, rel: str, limits: LimitsConfig) -> RawBatch:
    decoded = _decode(data)
    lines = decoded.lines if decoded.lines is not None else (decoded.text or "").split("\n")
    records: list[dict[str, str | None]] = []
    starts: list[int] = []
    rejects: list[Reject] = []
    keys: dict[str, None] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if number in decoded.bad_lines:
            rejects.append(Reject(number, line, decoded.bad_lines[number]))
            continue
        if len(line) > limits.max_line_bytes:  # characters: at most its bytes
            rejects.append(Reject(number, line[:1024] + "…", _too_long(limits)))
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            rejects.append(Reject(number, line, f"malformed JSON ({exc.msg})"))
            continue
        if not isinstance(obj, dict):
            rejects.append(Reject(number, line, "a JSON line must be an object"))
            continue
        records.append({k: _as_text(v) for k, v in obj.items()})
        keys.update(dict.fromkeys(obj))
        starts.append(number)
    if not records and not rejects:
        raise FileError(rel, 1, "file holds no JSON records")
    frame = pl.DataFrame(
        {k: pl.Series([r.get(k) for r in records], dtype=pl.String) for k in keys}
    ).with_columns(pl.Series(LINE, starts, dtype=pl.Int64))
    return RawBatch(rel, frame, rejects, encoding=decoded.encoding)


# --- Parquet ---------------------------------------------------------------------------------


def _read_parquet(path: Path, rel: str) -> RawBatch:
    try:
        frame = pl.read_parquet(path)
    except Exception as exc:  # polars raises several types for a damaged file
        raise FileError(rel, None, f"cannot read Parquet ({exc})") from exc
    as_text = []
    for name, dtype in frame.schema.items():
        column = pl.col(name)
        if isinstance(dtype, pl.Datetime):
            if dtype.time_zone is not None:
                column = column.dt.convert_time_zone("UTC").dt.strftime(
                    "%Y-%m-%dT%H:%M:%S%.f+00:00"
                )
            else:
                column = column.dt.strftime("%Y-%m-%dT%H:%M:%S%.f")
        elif isinstance(dtype, pl.List):
            column = column.cast(pl.List(pl.String)).list.join(";")
        elif dtype == pl.Boolean:
            column = column.cast(pl.String)
        else:
            column = column.cast(pl.String)
        as_text.append(column.alias(name))
    line = (
        pl.col(ORIGIN_LINE).cast(pl.Int64)
        if ORIGIN_LINE in frame.columns
        else pl.int_range(1, frame.height + 1, dtype=pl.Int64)
    )
    frame = frame.with_columns(line.alias(LINE)).select(
        *[c for c in as_text if c.meta.output_name() != ORIGIN_LINE], LINE
    )
    return RawBatch(rel, frame, encoding="parquet")


# --- header checks ---------------------------------------------------------------------------


def _check_columns(
    batch: RawBatch,
    expected: tuple[str, ...],
    required: tuple[str, ...],
) -> RawBatch:
    present = [c for c in batch.frame.columns if c != LINE and c not in STAGED]
    seen = set(present)
    missing = [c for c in required if c not in seen]
    if missing and (batch.frame.height or not batch.rejects):
        raise FileError(batch.file, 1, "missing required column(s): " + ", ".join(missing))
    unknown = [c for c in present if c not in expected]
    for name in unknown:
        batch.warnings.append(f"{batch.file}: unknown column {name!r} ignored")
    frame = batch.frame.select(
        [pl.col(c) if c in seen else pl.lit(None, dtype=pl.String).alias(c) for c in expected]
        + [pl.col(LINE)]
        + [pl.col(c) for c in STAGED if c in batch.frame.columns]
    )
    batch.frame = frame
    return batch
