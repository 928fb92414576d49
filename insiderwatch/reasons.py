"""Reasons in the reader's language.

Detectors, the model and the boosters write each reason once, in English, into the alert
store; that text is the record. A report in Japanese renders each reason through the patterns
of ``templates/reasons_ja.toml``: the English wording with its numbers, names and sub-phrases
captured, put back into the Japanese wording. A reason no pattern matches is shown as written.

>>> translate("printed 92 pages in 1 job(s); usual 0; peers 6.1", "ja")
'1件の印刷ジョブで92ページを印刷。通常 0、同僚 6.1'
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from schemas.features import FEATURE_NAMES

CATALOGUES = {"ja": Path(__file__).resolve().parent / "templates" / "reasons_ja.toml"}
_FIELD = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class _Pattern:
    regex: re.Pattern[str]
    target: str
    split: dict[str, str]


def _compile(english: str) -> re.Pattern[str]:
    features = "|".join(
        re.escape(n.replace("_", " ")) for n in sorted(FEATURE_NAMES, key=len, reverse=True)
    )
    parts, last = [], 0
    for found in _FIELD.finditer(english):
        parts.append(re.escape(english[last : found.start()]))
        name = found.group(1)
        parts.append(f"(?P<{name}>{features})" if name == "feature" else f"(?P<{name}>.+?)")
        last = found.end()
    parts.append(re.escape(english[last:]))
    return re.compile("".join(parts), re.DOTALL)


@dataclass(frozen=True)
class Catalogue:
    reasons: tuple[_Pattern, ...]
    parts: tuple[_Pattern, ...]
    words: dict[str, str]
    features: dict[str, str]
    separators: dict[str, str]

    def reason(self, text: str) -> str | None:
        """The translation of a whole reason, or None when no pattern matches it."""
        for pattern in self.reasons:
            found = pattern.regex.fullmatch(text)
            if found:
                return self._fill(pattern, found)
        return None

    def _fill(self, pattern: _Pattern, found: re.Match[str]) -> str:
        values = {}
        for name, value in found.groupdict().items():
            if name in pattern.split:
                separator = pattern.split[name]
                joined = self.separators.get(separator, separator)
                values[name] = joined.join(self._field(v) for v in _split(value, separator))
            elif name == "feature":
                values[name] = self.features.get(value.replace(" ", "_"), value)
            else:
                values[name] = self._field(value)
        return pattern.target.format(**values)

    def _field(self, value: str) -> str:
        for pattern in self.parts:
            found = pattern.regex.fullmatch(value)
            if found:
                return self._fill(pattern, found)
        return self.words.get(value, value)


def _split(text: str, separator: str) -> list[str]:
    """``text`` split at ``separator`` outside parentheses.

    >>> _split("a 1 (usual 0; peers 0); b 2 (usual 1; peers 1)", "; ")
    ['a 1 (usual 0; peers 0)', 'b 2 (usual 1; peers 1)']
    """
    items, depth, start, i = [], 0, 0, 0
    while i < len(text):
        if text[i] in "(（":
            depth += 1
        elif text[i] in ")）":
            depth = max(depth - 1, 0)
        elif depth == 0 and text.startswith(separator, i):
            items.append(text[start:i])
            i += len(separator)
            start = i
            continue
        i += 1
    items.append(text[start:])
    return items


def _patterns(entries: list[dict]) -> tuple[_Pattern, ...]:
    return tuple(_Pattern(_compile(e["en"]), e["ja"], dict(e.get("split", {}))) for e in entries)


@cache
def catalogue(language: str) -> Catalogue | None:
    path = CATALOGUES.get(language)
    if path is None:
        return None
    with path.open("rb") as fh:
        data = tomllib.load(fh)
    return Catalogue(
        reasons=_patterns(data["reason"]),
        parts=_patterns(data["part"]),
        words=dict(data["words"]),
        features=dict(data["features"]),
        separators=dict(data["separators"]),
    )


def translate(text: str, language: str) -> str:
    """``text`` in ``language`` where a pattern knows it; else unchanged."""
    table = catalogue(language)
    if table is None:
        return text
    translated = table.reason(text)
    return text if translated is None else translated
