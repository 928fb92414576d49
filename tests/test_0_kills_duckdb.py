"""kill -9 during a run, then a rerun: the store as one uninterrupted run leaves it (part a of
two; see tests/killing.py)."""

from __future__ import annotations

from pathlib import Path

from tests.killing import KILLS_PER_FILE, check_concurrent, check_kills


def test_a_rerun_after_kill_9_leaves_what_an_uninterrupted_run_leaves_a(
    tmp_path_factory, tmp_path: Path
) -> None:
    killed = check_kills(1, tmp_path_factory, tmp_path)
    assert killed == KILLS_PER_FILE


def test_a_second_run_started_during_a_run_is_turned_away_on_duckdb(
    tmp_path_factory, tmp_path: Path
) -> None:
    check_concurrent(tmp_path_factory, tmp_path)
