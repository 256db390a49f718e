"""Re-import scenarios in real Anki for problems 4, 5, 7 and 8 of issue 10 (1-3: test_identity, 6: test_hazards).

Each builds, imports, reviews every card, edits, rebuilds and re-imports with default options, and checks
that nothing a user has is disturbed, or that the build refused with the exact diagnostics and left the
previous package and lock byte-identical.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from conftest import T0, Anki, build_at, edit, imported_and_reviewed, refused, state
from deckgen.build import pipeline
from deckgen.build.exclusive import exclusive
from deckgen.build.lock import LOCK_NAME, read_lock
from deckgen.build.pipeline import compile_deck
from deckgen.cli import main
from deckgen.errors import DeckgenError

NEXT = "\n## What is bias?\n<!-- id: tech-bias -->\n\nA systematic error.\n"


def test_notes_never_vanish_into_the_previous_answer(sample: Path, out_dir: Path, anki: Anki) -> None:
    """Problem 4: '##What', no-break spaces, indented headings, a bold question, a commented-out note."""
    before = imported_and_reviewed(sample, out_dir, anki)
    technical = sample / "technical.md"
    original = technical.read_text(encoding="utf-8")
    lines = original.count("\n")
    for variant, col in (("##What is bias?", 1), ("##\u00a0What is bias?", 1), ("  ## What is bias?", 3)):
        technical.write_text(original + NEXT.replace("## What is bias?", variant), encoding="utf-8")
        assert refused(sample, out_dir, T0 + 1) == (f"technical.md:{lines + 2}:{col} heading-malformed",)
    technical.write_text(original + "\n<!-- extra: hidden -->\n", encoding="utf-8")
    assert refused(sample, out_dir, T0 + 1) == (f"technical.md:{lines + 2}:1 extra-with-text",)
    # a bold question alone in an answer: a warning with a hint (the build goes on)
    technical.write_text(original + "\n**What is variance?**\n\nSensitivity to the sample.\n", encoding="utf-8")
    (warning,) = build_at(sample, out_dir, now=T0 + 1).compiled.warnings
    assert (warning.rule, warning.location.line) == ("bold-question", lines + 2) and "## " in warning.hint
    # a note inside an HTML comment is not built, and the note after the comment is
    technical.write_text(original + "\n<!--" + NEXT + "-->\n" + NEXT.replace("bias", "variance"), encoding="utf-8")
    result = build_at(sample, out_dir, now=T0 + 2)
    assert result.compiled.diff.added == ("tech-variance",)
    assert not any("tech-bias" in f for rn in result.compiled.notes for f in rn.fields)
    log = anki.import_package(result.output)
    assert (log.new, log.conflicting) == (1, 0)
    after = state(anki)
    assert after.duplicates == set()
    assert after.notes == before.notes + 1 and after.revlog == before.revlog
    assert {c: after.cards[c] for c in before.cards} == before.cards
    assert compile_deck(sample, T0 + 3).diagnostics == ()


def test_cloze_deletions_that_would_break_the_package_are_refused(sample: Path, out_dir: Path, anki: Anki) -> None:
    """Problem 5: c65537 made Anki refuse the whole package; unclosed deletions and '}}' in math broke cards."""
    before = imported_and_reviewed(sample, out_dir, anki)
    algorithms = sample / "algorithms.md"
    original = algorithms.read_text(encoding="utf-8")
    line = "with step size {{c2::$\\eta$}}."
    for added, rule in (
        ("{{c65537::x}}", "cloze-number"),
        ("{{c99999999999999999999999::x}}", "cloze-number"),
        ("{{c3::never closed", "cloze-unclosed"),
        ("{{c3:x}}", "cloze-malformed"),
        ("{{c3::$x^{2}}$}}", "cloze-malformed"),
    ):
        algorithms.write_text(original.replace(line, f"{line[:-1]} and {added}."), encoding="utf-8")
        text_line = algorithms.read_text(encoding="utf-8").split("\n")[17]
        col = text_line.index(added) + 1 + (added.index("}}") if "$}}" in added else 0)
        assert refused(sample, out_dir, T0 + 1) == (f"algorithms.md:18:{col} {rule}",), added
    # the documented safe forms import: up to c500, and '} }' inside math in a deletion
    algorithms.write_text(original.replace(line, f"{line[:-1]}, {{{{c3::$x^{{2}} }}$}}}} and {{{{c500::far}}}}."))
    result = build_at(sample, out_dir, now=T0 + 2)
    log = anki.import_package(result.output)
    assert (log.new, log.updated, log.conflicting) == (0, 1, 0)
    cards = {c.ord: c for c in anki.cards_of("algo-gd-cloze")}
    assert sorted(cards) == [0, 1, 2, 499]
    assert "x^{2} }" in cards[2].answer() and "x^{2}" not in cards[2].question()
    after = state(anki)
    assert after.duplicates == set()
    assert after.revlog == before.revlog and {c: after.cards[c] for c in before.cards} == before.cards


def test_changed_note_beats_an_edit_made_inside_anki_whatever_source_date_epoch_says(
    sample: Path, out_dir: Path, anki: Anki
) -> None:
    """Problem 7: with SOURCE_DATE_EPOCH older than a user's in-Anki edit, the source change never arrived."""
    before = imported_and_reviewed(sample, out_dir, anki)
    note = anki.note_by_id_field("tip-think-aloud")
    note["Extra"] = "my own remark"
    anki.col.update_note(note)  # stamped with the real clock, long after T0
    edited_at = anki.note_by_id_field("tip-think-aloud").mod
    assert edited_at > T0 + 10
    edit(sample / "tips.md", "before you code", "before you write code")
    run = CliRunner().invoke(
        main, ["build", str(sample), "-o", str(out_dir), "-q"], env={"SOURCE_DATE_EPOCH": str(T0 + 10)}
    )
    assert run.exit_code == 0, run.output
    lock = read_lock(sample / LOCK_NAME)
    assert lock.notes["tip-think-aloud"].mod > edited_at  # changed: after the real clock
    assert lock.notes["gen-why-ml"].mod == T0  # unchanged: the lock's mod
    package = next(out_dir.glob("*.apkg"))
    log = anki.import_package(package)
    assert (log.new, log.updated, log.conflicting) == (0, 1, 0)
    assert "before you write code" in anki.note_by_id_field("tip-think-aloud")["Answer"]
    after = state(anki)
    assert after.duplicates == set()
    assert (after.notes, after.revlog, after.cards) == (before.notes, before.revlog, before.cards)
    # reproducible from the lock: the same sources and lock give the same bytes, at any clock
    first = package.read_bytes()
    build_at(sample, out_dir, now=T0 + 99_999)
    assert package.read_bytes() == first


def test_a_build_that_started_earlier_never_overwrites_a_newer_one(
    sample: Path, out_dir: Path, anki: Anki, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Problem 8: a slow build that read the old sources finished after a newer build and overwrote it."""
    before = imported_and_reviewed(sample, out_dir, anki)
    slow_has_read, release = threading.Event(), threading.Event()
    real_update_lock = pipeline.update_lock

    def update_lock(*args: Any, **kwargs: Any) -> Any:  # the sources are read; pause the first build here
        if threading.current_thread().name == "slow":
            slow_has_read.set()
            assert release.wait(30)
        return real_update_lock(*args, **kwargs)

    monkeypatch.setattr(pipeline, "update_lock", update_lock)
    results: dict[str, Any] = {}

    def run(name: str, now: int) -> None:
        results[name] = build_at(sample, out_dir, now=now, cache=False)

    slow = threading.Thread(target=run, args=("slow", T0 + 1), name="slow")
    slow.start()
    assert slow_has_read.wait(30)
    edit(sample / "tips.md", "before you code", "before you write code")  # the sources change
    waited: list[Path] = []
    monkeypatch.setattr(pipeline, "exclusive", _recording(waited))
    fast = threading.Thread(target=run, args=("fast", T0 + 2), name="fast")
    fast.start()
    try:
        fast.join(1.0)
        assert fast.is_alive()  # the newer build waits for the older one
        assert len(waited) == 1 and waited[0] in {sample.resolve(), out_dir.resolve()}
    finally:
        release.set()
        slow.join(30)
        fast.join(30)
    assert results["slow"].written and results["fast"].written
    # the last word is the newer build's: the package and lock hold the new text
    lock = read_lock(sample / LOCK_NAME)
    assert lock.notes["tip-think-aloud"].mod == T0 + 2
    log = anki.import_package(results["fast"].output)
    assert (log.new, log.updated, log.conflicting) == (0, 1, 0)
    assert "before you write code" in anki.note_by_id_field("tip-think-aloud")["Answer"]
    after = state(anki)
    assert after.duplicates == set()
    assert (after.notes, after.revlog, after.cards) == (before.notes, before.revlog, before.cards)


def _recording(waited: list[Path]) -> Any:
    """``exclusive`` that records which folder it had to wait for."""

    def recording(source: Path, out_dir: Path, on_wait: Any = None) -> Any:
        return exclusive(source, out_dir, waited.append)

    return recording


def test_a_lock_rewritten_by_another_program_during_the_build_is_not_overwritten(
    sample: Path, out_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build_at(sample, out_dir, now=T0)
    real_update_lock = pipeline.update_lock

    def update_lock(*args: Any, **kwargs: Any) -> Any:
        (sample / LOCK_NAME).write_bytes((sample / LOCK_NAME).read_bytes() + b"\n")  # e.g. a git checkout
        return real_update_lock(*args, **kwargs)

    monkeypatch.setattr(pipeline, "update_lock", update_lock)
    edit(sample / "tips.md", "before you code", "before you write code")
    package = next(out_dir.glob("*.apkg")).read_bytes()
    with pytest.raises(DeckgenError, match=r"deckgen\.lock changed while this build ran"):
        build_at(sample, out_dir, now=T0 + 1)
    assert next(out_dir.glob("*.apkg")).read_bytes() == package


def test_a_second_build_process_waits_and_leaves_nothing_in_the_source_folder(sample: Path, out_dir: Path) -> None:
    out_dir.mkdir()
    files = sorted(p.name for p in sample.iterdir())
    command = [sys.executable, "-m", "deckgen", "build", str(sample), "-o", str(out_dir), "-q", "--no-cache"]
    env = {**os.environ, "SOURCE_DATE_EPOCH": str(T0)}
    with exclusive(sample, out_dir):
        proc = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
        assert proc.stderr is not None
        first = proc.stderr.readline()  # blocks until the build says it waits (or ends)
        assert "waiting for another build using" in first, first
        time.sleep(0.5)
        assert proc.poll() is None and list(out_dir.glob("*.apkg")) == []  # it waits for us
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert sorted(p.name for p in sample.iterdir()) == sorted([*files, LOCK_NAME])
