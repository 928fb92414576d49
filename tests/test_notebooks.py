"""Every analyst notebook runs top to bottom on the sample organisation, and is committed
without outputs."""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from detectors.base import TUNING_PATH

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


def test_there_are_the_four_notebooks() -> None:
    names = [p.name for p in NOTEBOOKS]
    assert names == [
        "01_tune_a_detector.ipynb",
        "02_person_timeline.ipynb",
        "03_isolation_forest.ipynb",
        "04_write_back_tuning.ipynb",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_committed_without_outputs(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)


@pytest.fixture(scope="module")
def notebook_env(reported_store: Path, tmp_path_factory, monkeypatch_module) -> Path:
    root = tmp_path_factory.mktemp("notebooks")
    shutil.copytree(reported_store, root / "store")
    shutil.copy(TUNING_PATH, root / "tuning.toml")
    monkeypatch_module.setenv("INSIDERWATCH_STORE", str(root / "store"))
    monkeypatch_module.setenv("INSIDERWATCH_TUNING", str(root / "tuning.toml"))
    monkeypatch_module.setenv("INSIDERWATCH_ACCEPT", "1")
    return root


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(path: Path, notebook_env: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()  # raises on the first cell that fails
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    if path.stem.startswith("01") or path.stem.startswith("02"):
        assert any("image/png" in o.get("data", {}) for o in outputs), "the plot is drawn"
    if path.stem.startswith("04"):
        written = tomllib.loads((notebook_env / "tuning.toml").read_text(encoding="utf-8"))
        assert written["rules"]["mass_printing"]["min_pages"] == 150
        assert written["scoring"]["alert_threshold"] == 55
        assert any("written to" in o.get("text", "") for o in outputs)
