"""kill -9 during a run, then a rerun: the store as one uninterrupted run leaves it (part a of
two; see tests/killing.py)."""

from __future__ import annotations

from pathlib import Path

from tests.killing import KILLS_PER_FILE, check_kills


def test_a_rerun_after_kill_9_leaves_what_an_uninterrupted_run_leaves_a(
    tmp_path_factory, tmp_path: Path
) -> None:
    killed = check_kills(1, tmp_path_factory, tmp_path)
    assert killed == KILLS_PER_FILE
