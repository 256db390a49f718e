"""scripts/run_snippets.py: the deck's Python snippets run; heavy or partial ones are reported, never passed."""

from __future__ import annotations

import importlib.util
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).parent.parent


@pytest.fixture(scope="module")
def runner() -> ModuleType:
    spec = importlib.util.spec_from_file_location("run_snippets", ROOT / "scripts" / "run_snippets.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["run_snippets"] = module
    spec.loader.exec_module(module)
    return module


def test_no_snippet_of_the_deck_is_a_fragment(runner: ModuleType) -> None:
    """Every snippet defines or imports each name it reads (torch/np included), so each one can be run."""
    snippets = runner.snippets(ROOT / "source")
    assert [(s.where, sorted(s.free_names())) for s in snippets if s.free_names()] == []


def test_every_light_snippet_of_the_deck_passes(runner: ModuleType) -> None:
    light = [s for s in runner.snippets(ROOT / "source") if runner.is_light(s)]
    assert len(light) >= 30
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:  # each run is its own subprocess
        outcomes = list(pool.map(lambda s: runner.run(s, timeout=120), light))
    assert [(o.snippet.where, o.status, o.detail) for o in outcomes if o.status != "pass"] == []


def test_torch_snippets_are_skipped_not_passed(runner: ModuleType) -> None:
    torch = [s for s in runner.snippets(ROOT / "source") if "torch" in s.imports()]
    assert torch, "the deck has PyTorch snippets"
    if importlib.util.find_spec("torch") is None:
        assert {runner.run(s, timeout=5).status for s in torch} == {"skipped"}


def test_failures_fragments_and_timeouts_are_reported(runner: ModuleType, tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text(
        "## Q?\n<!-- id: q -->\n\n```python\nraise SystemExit(3)\n```\n\n"
        "```python\nprint(model.predict(X))\n```\n\n"
        "```python\nwhile True:\n    pass\n```\n\n"
        "```text\nnot python\n```\n\n"
        "```python\nimport numpy as np\nprint(np.arange(3).sum())\n```\n",
        encoding="utf-8",
    )
    outcomes = [runner.run(s, timeout=2) for s in runner.snippets(tmp_path)]
    assert [(o.snippet.line, o.status) for o in outcomes] == [(4, "fail"), (8, "fragment"), (12, "fail"), (21, "pass")]
    assert outcomes[2].detail.startswith("timed out") and outcomes[3].detail == "3"
    assert runner.main([str(tmp_path), "--timeout", "2"]) == 1


def test_a_fragment_needing_a_missing_library_is_a_fragment_not_skipped(runner: ModuleType, tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text(
        "## Q?\n<!-- id: q -->\n\n```python\nimport no_such_module_xyz\nprint(model)\n```\n\n"
        "```python\nimport no_such_module_xyz\n```\n",
        encoding="utf-8",
    )
    outcomes = [runner.run(s, timeout=5) for s in runner.snippets(tmp_path)]
    assert [(o.status, o.detail) for o in outcomes] == [
        ("fragment", "not self-contained: uses model"),
        ("skipped", "needs no_such_module_xyz"),
    ]
