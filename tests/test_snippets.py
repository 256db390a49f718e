"""scripts/run_snippets.py: the deck's Python snippets run; heavy or partial ones are reported, never passed."""

from __future__ import annotations

import importlib.util
import sys
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


def test_every_light_self_contained_snippet_of_the_deck_passes(runner: ModuleType) -> None:
    snippets = runner.snippets(ROOT / "source")
    light = [s for s in snippets if runner.is_light(s) and not s.free_names() - runner.IMPLIED.keys()]
    assert len(light) >= 5
    outcomes = [runner.run(s, timeout=120) for s in light]
    assert [(o.snippet.where, o.detail) for o in outcomes if o.status != "pass"] == []


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
