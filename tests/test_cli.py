"""The command line: summary output, exit codes, new/stats/diff, and both entry points."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner, Result

from conftest import packages_loaded
from deckgen import __version__
from deckgen.cli import main


def run(*args: str) -> Result:
    result = CliRunner().invoke(main, list(args))
    assert "Traceback" not in result.output
    return result


def test_build_prints_subdecks_changes_and_output_path(sample: Path, tmp_path: Path) -> None:
    result = run("build", str(sample), "-o", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "Sample Deck"
    assert any(line.split() == ["Algorithms", "and", "Models", "3", "notes", "5", "cards"] for line in lines)
    assert any(line.split()[:5] == ["total", "10", "notes", "12", "cards"] for line in lines)
    assert "since the lock: 10 added (" in result.output
    assert " and 7 more), 0 changed, 0 removed, 0 unchanged" in result.output
    assert f"wrote {tmp_path / 'out' / 'sample-deck.apkg'}" in result.output
    again = run("build", str(sample), "-o", str(tmp_path / "out"))
    assert "0 added, 0 changed, 0 removed, 10 unchanged" in again.output and "updated" not in again.output


def test_dry_run_and_diff_list_changes_and_orphans_and_write_nothing(sample: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run("build", str(sample), "-o", str(out))
    package = (out / "sample-deck.apkg").read_bytes()
    lock = (sample / "deckgen.lock").read_bytes()
    general = sample / "general.md"
    text = general.read_text(encoding="utf-8").replace("Python for modelling", "Python for models")
    general.write_text(text.replace("<!-- id: gen-why-ml -->", "<!-- id: gen-motivation; was: gen-why-ml -->"))
    (sample / "tips.md").write_text("---\nkind: tip\ndeck: Tips\n---\n", encoding="utf-8")
    for args in (("build", "--dry-run", "-o", str(out)), ("diff",)):
        result = run(*args, str(sample)) if args == ("diff",) else run(args[0], str(sample), *args[1:])
        assert result.exit_code == 0, result.output
        assert "~ gen-languages  changed: Answer" in result.output
        assert "gen-motivation  changed: Id  (renamed from gen-why-ml, history kept)" in result.output
        assert "- tip-think-aloud  (removed)" in result.output
        assert "orphans:" in result.output and "Anki never deletes notes on import" in result.output
        assert "dry run: nothing written" in result.output
    assert (out / "sample-deck.apkg").read_bytes() == package
    assert (sample / "deckgen.lock").read_bytes() == lock


def test_source_errors_exit_1_and_usage_errors_exit_2(sample: Path, tmp_path: Path) -> None:
    (sample / "bad.md").write_text("## No id?\n\nText\n\n## Also none?\n\nText\n", encoding="utf-8")
    result = run("build", str(sample), "-o", str(tmp_path))
    assert result.exit_code == 1
    assert f"{sample / 'bad.md'}:1:1: error: note 'No id?' has no id [id-missing]" in result.output
    assert f"{sample / 'bad.md'}:5:1: error:" in result.output and "2 errors; nothing written" in result.output
    assert run("build", "--no-such-option").exit_code == 2
    assert run("frobnicate").exit_code == 2


def test_version_and_help() -> None:
    assert run("--version").output.strip() == f"deckgen, version {__version__}"
    help_text = run("--help").output
    for command in ("build", "check", "diff", "new", "stats"):
        assert command in help_text


def test_new_appends_a_skeleton_with_an_id_from_the_prompt_alone(sample: Path) -> None:
    result = run("new", "What is the kernel trick?", str(sample), "--deck", "technical")
    assert result.exit_code == 0, result.output
    assert "added 'kernel-trick'" in result.output  # no prefix guessed from the neighbours' ids
    assert "## What is the kernel trick?\n<!-- id: kernel-trick -->" in (sample / "technical.md").read_text()
    again = run("new", "What is the kernel trick?", str(sample), "--deck", "Technical")
    assert "added 'kernel-trick-2'" in again.output
    checked = run("check", str(sample), "--strict")  # the untouched skeletons are caught
    assert checked.exit_code == 1 and checked.output.count("[placeholder]") == 2
    assert "0 error(s), 3 warning(s); 3 warnings treated as errors (--strict)" in checked.output  # + prompt-duplicate


def test_new_keeps_source_as_a_deprecated_alias(sample: Path) -> None:
    result = run("new", "Why bag models?", "--source", str(sample), "--deck", "Technical")
    assert result.exit_code == 0 and "added 'bag-models'" in result.output
    assert "--source is deprecated" in result.output
    assert "--source" not in run("new", "--help").output
    both = run("new", "Q?", str(sample), "--source", str(sample))
    assert both.exit_code == 2


def test_stats_counts_cards_per_subdeck_and_notetype_and_kinds_without_cloze(sample: Path) -> None:
    result = run("stats", str(sample))
    assert result.exit_code == 0
    rows = [line.split() for line in result.output.splitlines()]
    assert ["Technical", "3", "3"] in rows and ["Algorithms", "and", "Models", "3", "5"] in rows
    assert ["deckgen", "Cloze", "1", "2"] in rows and ["deckgen", "Basic", "9", "10"] in rows
    assert ["question", "8", "10"] in rows and ["tip", "1", "1"] in rows and not any(r[:1] == ["cloze"] for r in rows)
    assert ["topic::general", "2"] in rows and ["total", "10", "notes", "12", "cards"] in rows
    top = [line.split() for line in run("stats", str(sample), "--top", "1").output.split("tag ")[1].splitlines()]
    assert len([r for r in top if len(r) == 2 and r[0] != "total"]) == 1


def test_python_dash_m_and_console_script_both_work(sample: Path, tmp_path: Path) -> None:
    env = {**os.environ, "SOURCE_DATE_EPOCH": "1764000000"}
    module = subprocess.run(
        [sys.executable, "-m", "deckgen", "build", str(sample), "-o", str(tmp_path / "a")],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert module.returncode == 0, module.stderr
    script = Path(sys.executable).with_name("deckgen")
    again = subprocess.run([str(script), "check", str(sample)], capture_output=True, text=True, check=False)
    assert again.returncode == 0 and "0 error(s)" in again.stdout


def test_unwritable_output_is_an_error_message_not_a_traceback(sample: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder", encoding="utf-8")
    result = run("build", str(sample), "-o", str(blocker / "out"))
    assert result.exit_code == 1
    assert result.output.startswith("error: cannot write") or "error: " in result.output
    assert not (sample / "deckgen.lock").exists()  # nothing half-done: the lock follows the package


def test_a_check_served_from_the_cache_imports_no_renderer_nor_package_writer(sample: Path, tmp_path: Path) -> None:
    """Start-up is most of a cached ``check``: Python-Markdown, Pygments, genanki and YAML load only when
    something is rendered, packaged or parsed afresh."""
    out = tmp_path / "out"
    assert CliRunner().invoke(main, ["build", str(sample), "-o", str(out)]).exit_code == 0
    heavy = ["markdown", "pymdownx", "pygments", "genanki", "yaml", "multiprocessing"]
    assert packages_loaded(["check", str(sample), "-o", str(out)], heavy) == []
