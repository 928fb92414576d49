"""Least disclosure: keyed pseudonyms and scrubbing people's identities out of free text.

A pseudonym is an HMAC of the user id under a key taken from the environment
(``INSIDERWATCH_PSEUDONYM_KEY``), so the same person gets the same pseudonym in every export
made with the same key, and nobody without the key can reverse or recompute it.

The ``Identities`` index finds any roster person's id, name, work address or private address
inside free text (reasons, file paths, subjects, recipients) in one pass (Aho–Corasick), so a
report can keep the people it is about and replace everyone else.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable, Mapping
from typing import Any

import ahocorasick
import polars as pl
from markupsafe import Markup

PSEUDONYM_KEY_ENV = "INSIDERWATCH_PSEUDONYM_KEY"
MIN_KEY_LENGTH = 16
# Shorter names and ids would match inside ordinary words.
MIN_IDENTITY_LENGTH = 2


class PrivacyError(ValueError):
    """Pseudonymising was asked for without a usable key."""


def pseudonym_key(environ: Mapping[str, str] | None = None) -> bytes:
    """The pseudonym key from the environment; never from a file in the repository."""
    value = (os.environ if environ is None else environ).get(PSEUDONYM_KEY_ENV, "")
    if len(value) < MIN_KEY_LENGTH:
        raise PrivacyError(
            f"pseudonymising needs a secret of at least {MIN_KEY_LENGTH} characters in the "
            f"environment variable {PSEUDONYM_KEY_ENV}"
        )
    return value.encode()


def pseudonym(user: str, key: bytes) -> str:
    """Stable keyed pseudonym: ``P-`` and ten hex digits of HMAC-SHA256(key, user)."""
    return "P-" + hmac.new(key, user.encode(), hashlib.sha256).hexdigest()[:10]


class Identities:
    """Every way a roster person can be named in text, mapped back to the person."""

    def __init__(self, roster: pl.DataFrame) -> None:
        owners: dict[str, set[str]] = {}
        columns = ["user", "name", "email"]
        has_private = "personal_emails" in roster.columns
        for row in roster.select([*columns, *(["personal_emails"] if has_private else [])]).rows(
            named=True
        ):
            names = [row["user"], row["name"], row["email"], *(row.get("personal_emails") or [])]
            for text in names:
                if text and len(text.strip()) >= MIN_IDENTITY_LENGTH:
                    owners.setdefault(text.strip().casefold(), set()).add(row["user"])
        self._automaton = ahocorasick.Automaton()
        for text, users in owners.items():
            self._automaton.add_word(text, (len(text), frozenset(users)))
        self._empty = not owners
        if owners:
            self._automaton.make_automaton()

    def replace(self, text: str, replacement: Callable[[frozenset[str]], str | None]) -> str:
        """``text`` with each mention replaced by ``replacement(owners)``; a ``None`` keeps
        the mention. Longest mentions win; matching ignores case."""
        if self._empty or not text:
            return text
        folded = text.casefold()
        if len(folded) != len(text):  # rare characters change length when folded
            folded = text.lower() if len(text.lower()) == len(text) else text
        out, last = [], 0
        for end, (length, users) in self._automaton.iter_long(folded):
            start = end - length + 1
            swap = replacement(users)
            if swap is None:
                continue
            out.append(text[last:start])
            out.append(swap)
            last = end + 1
        if not out:
            return text
        out.append(text[last:])
        return "".join(out)


def keep_only(allowed: set[str], stand_in: str) -> Callable[[frozenset[str]], str | None]:
    """Keep mentions of the allowed people; anyone else becomes ``stand_in``."""

    def choose(users: frozenset[str]) -> str | None:
        return None if users & allowed else stand_in

    return choose


def pseudonymise_all(key: bytes, stand_in: str) -> Callable[[frozenset[str]], str | None]:
    """Every mention becomes the person's pseudonym (a name shared by several people becomes
    ``stand_in``, since it cannot say which of them is meant)."""

    def choose(users: frozenset[str]) -> str | None:
        return pseudonym(next(iter(users)), key) if len(users) == 1 else stand_in

    return choose


def scrub_tree(value: Any, fix: Callable[[str], str]) -> Any:
    """Apply ``fix`` to every string inside nested dicts, lists and tuples. ``Markup`` (SVG
    drawn from numbers by the report itself) is left as it is."""
    if isinstance(value, Markup):
        return value
    if isinstance(value, str):
        return fix(value)
    if isinstance(value, dict):
        return {k: scrub_tree(v, fix) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(scrub_tree(v, fix) for v in value)
    return value


def pseudonymise_frame(
    frame: pl.DataFrame, identities: Identities, key: bytes, stand_in: str = "[name]"
) -> pl.DataFrame:
    """An analyst export with every person replaced by their pseudonym: the user and
    supervisor columns by key, names dropped, and identities inside any text replaced."""
    choose = pseudonymise_all(key, stand_in)

    def fix(text: str | None) -> str | None:
        return None if text is None else identities.replace(text, choose)

    out = frame
    for column in ("user_id", "user", "supervisor"):
        if column in out.columns:
            out = out.with_columns(
                pl.col(column).map_elements(lambda u: pseudonym(u, key), return_dtype=pl.String)
            )
    out = out.drop([c for c in ("name", "email") if c in out.columns])
    for column, dtype in out.schema.items():
        if dtype == pl.String and column not in ("user_id", "user", "supervisor"):
            out = out.with_columns(pl.col(column).map_elements(fix, return_dtype=pl.String))
        elif dtype == pl.List(pl.String):
            out = out.with_columns(
                pl.col(column).list.eval(pl.element().map_elements(fix, return_dtype=pl.String))
            )
    return out
