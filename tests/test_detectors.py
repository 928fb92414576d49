"""Every detector's own cases, the metadata of the whole collection, and the tuning file."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from detectors.base import TuningError, metadata_problems
from detectors.settings import load_tuning
from insiderwatch.casebook import run_case
from insiderwatch.features import in_domains, matched_terms
from insiderwatch.reasons import catalogue, translate

# Defaults only: the cases pin the shipped behaviour, not an analyst's local overrides.
TUNING = load_tuning(None)
JAPANESE = catalogue("ja")
ENGLISH = re.compile(
    r"\b(usual|peers|files|events|connects|unusual|starter|after hours|min after)\b"
)
CASES = [(d, c) for d in TUNING.detectors for c in d.meta.cases]


@pytest.mark.parametrize(("detector", "case"), CASES, ids=[f"{d.id}: {c.name}" for d, c in CASES])
def test_detector_case(detector, case) -> None:
    found = run_case(detector, case, TUNING)
    if not case.expect:
        assert found.height == 0, found["reason"].to_list()
        return
    assert found.height >= 1
    first = found.row(0, named=True)
    assert first["reason"]
    if detector.meta.kind == "detection":
        # Reasons say the number, the person's usual and the peers' value.
        assert re.search(r"\d", first["reason"]) and "peers" in first["reason"], first["reason"]
        assert first["evidence"], "a detection names the events it rests on"
        assert re.match(r"^[a-z_]+/events\.csv:\d+$", first["evidence"][0]), first["evidence"]
    if case.severity is not None:
        assert first["severity"] == case.severity
    # Reports in Japanese know every wording a detector writes.
    untranslated = [r for r in found["reason"] if JAPANESE.reason(r) is None]
    assert not untranslated, (
        f"add a pattern to insiderwatch/templates/reasons_ja.toml: {untranslated}"
    )
    # Nested phrases too (the usual and peers' values, a new starter's label, circumstances).
    left = [translate(r, "ja") for r in found["reason"] if ENGLISH.search(translate(r, "ja"))]
    assert not left, f"English left in the Japanese reason: {left}"


def test_every_detector_has_complete_metadata() -> None:
    problems = metadata_problems()
    listing = "\n".join(f"{stem}: {'; '.join(found)}" for stem, found in problems.items())
    assert not problems, f"detectors with incomplete metadata:\n{listing}"


def test_metadata_check_lists_every_offender(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "orphan_logic.py").write_text("def detect(e, p):\n    return None\n")
    (rules / "thin_rule.py").write_text(
        "from detectors import base\n\n\nclass Params(base.Params):\n    limit: int\n\n\n"
        "def detect(e, p):\n    return None\n"
    )
    (rules / "thin_rule.toml").write_text(
        'title = "t"\ndescription = "d"\nmisses = "m"\nfalse_positives = ["f"]\n'
        'runbook = ["r"]\nconfirm = ["c"]\nseverity = "low"\nstatus = "stable"\n'
        'channel = "files"\n[[cases]]\nname = "only a positive case"\nexpect = true\n'
        '[ja]\ntitle = "t"\nrunbook = ["r"]\nconfirm = ["c"]\n'
    )
    # Complete but for the supervisor's questions and the Japanese texts.
    (rules / "untranslated.py").write_text("def detect(e, p):\n    return None\n")
    (rules / "untranslated.toml").write_text(
        'title = "t"\ndescription = "d"\nmisses = "m"\nfalse_positives = ["f"]\n'
        'runbook = ["r"]\nseverity = "low"\nstatus = "stable"\nchannel = "files"\n'
    )
    problems = metadata_problems(rules)
    assert set(problems) == {"orphan_logic", "thin_rule", "untranslated"}
    assert problems["orphan_logic"] == ["no .toml beside the .py"]
    assert any("differ from Params" in p for p in problems["thin_rule"])
    assert "no negative case" in problems["thin_rule"]
    assert "confirm: Field required" in problems["untranslated"][0]
    assert "ja: Field required" in problems["untranslated"][0]


def test_tuning_overrides_a_rule_parameter(tmp_path: Path) -> None:
    path = tmp_path / "tuning.toml"
    path.write_text("[rules.mass_printing]\nmin_pages = 500\n[scoring]\nbudget_share = 0.02\n")
    tuning = load_tuning(path)
    assert tuning.detector("mass_printing").params.min_pages == 500
    assert tuning.scoring.budget_share == 0.02
    assert TUNING.detector("mass_printing").params.min_pages == 50


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("[rules.mass_printing]\nmin_pgaes = 5\n", "rules.mass_printing.min_pgaes"),
        ("[rules.mass_printing]\nmin_pages = 'many'\n", "rules.mass_printing.min_pages"),
        ("[rules.no_such_rule]\nx = 1\n", "rules.no_such_rule"),
        ("[scoring]\nbudget_shar = 0.1\n", "scoring.budget_shar"),
        ("[model]\nseed = 1.5\n", "model.seed"),
        ("[modle]\nseed = 1\n", "modle"),
    ],
)
def test_tuning_mistakes_fail_naming_the_key(tmp_path: Path, text: str, named: str) -> None:
    path = tmp_path / "tuning.toml"
    path.write_text(text)
    with pytest.raises(TuningError, match=re.escape(named)):
        load_tuning(path)


_labels = st.text(alphabet="abcdefghij-", min_size=1, max_size=6).filter(
    lambda s: not s.startswith("-")
)
_hosts = st.lists(_labels, min_size=1, max_size=4).map(".".join)


@given(host=_hosts, domains=st.lists(_hosts, min_size=1, max_size=4))
def test_domain_match_agrees_with_plain_python(host: str, domains: list[str]) -> None:
    expected = any(host == d or host.endswith("." + d) for d in domains)
    got = pl.select(in_domains(pl.lit(host), domains)).item()
    assert got == expected


@given(
    words=st.lists(
        st.sampled_from(["CAD", "cAd", "decade", "図面", "x", "_", " ", "BOM", ".", "ＣＡＤ", "é"])
    ),
)
def test_keyword_match_agrees_with_plain_python(words: list[str]) -> None:
    text = "".join(words)
    terms = ("CAD", "図面")

    def oracle(term: str) -> bool:
        if not term.isascii():
            return term in text
        # Latin terms match in any ASCII case, and only that: "ＣＡＤ" is not "CAD".
        low = "".join(c.lower() if c.isascii() else c for c in text)
        t = term.lower()
        for at in range(len(low) - len(t) + 1):
            before = low[at - 1] if at else ""
            after = low[at + len(t)] if at + len(t) < len(low) else ""
            if (
                low[at : at + len(t)] == t
                and not (before.isascii() and before.isalnum())
                and not (after.isascii() and after.isalnum())
            ):
                return True
        return False

    got = pl.select(matched_terms(pl.lit(text), terms)).item().to_list()
    assert got == [t for t in terms if oracle(t)]


def test_detector_catalogue_is_in_step_with_the_metadata() -> None:
    from detectors.catalogue import DOC_PATH, catalogue_markdown

    assert DOC_PATH.read_text(encoding="utf-8") == catalogue_markdown(), (
        "detectors/README.md is stale: run `insiderwatch detectors write-docs`"
    )


def test_kept_forest_scores_as_pyod_and_scores_without_importing_pyod(tmp_path: Path) -> None:
    import pickle
    import subprocess
    import sys

    import numpy as np
    from pyod.models.iforest import IForest

    from detectors.models.isolation_forest import DeviationForest

    rng = np.random.default_rng(7)
    train = np.abs(rng.normal(0, 1, (600, 8)))
    days = np.abs(rng.normal(0, 2, (50, 8)))
    forest = DeviationForest(n_estimators=40, max_samples=256, seed=3).fit(train)
    wrapped = IForest(n_estimators=40, max_samples=256, random_state=3, n_jobs=1).fit(train)
    assert np.array_equal(forest.decision_function(days), wrapped.decision_function(days))
    assert np.array_equal(forest.train_scores_, np.sort(wrapped.decision_scores_))

    # A kept model, read in a fresh process, scores the same without pyod (nor numba).
    (tmp_path / "forest.pickle").write_bytes(pickle.dumps(forest))
    np.save(tmp_path / "days.npy", days)
    script = (
        "import pickle, sys, numpy as np\n"
        f"forest = pickle.loads(open({str(tmp_path / 'forest.pickle')!r}, 'rb').read())\n"
        f"scores = forest.decision_function(np.load({str(tmp_path / 'days.npy')!r}))\n"
        f"np.save({str(tmp_path / 'scores.npy')!r}, scores)\n"
        "print(sorted(m for m in ('pyod', 'numba') if m in sys.modules))\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "[]"
    assert np.array_equal(np.load(tmp_path / "scores.npy"), wrapped.decision_function(days))
