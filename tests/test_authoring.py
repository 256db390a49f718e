"""`fix --add-ids` and `new`: readable ids that no lock entry ever used, files changed in place safely."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner, Result
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import T0, build_at
from deckgen.authoring import add_ids
from deckgen.build.lock import read_lock
from deckgen.cli import main
from deckgen.sources.ids import assign_ids, slugify
from deckgen.sources.model import DeckConfig
from deckgen.sources.parse import parse_deck

UUID_LINE = 'uuid = "3f0b7c2e-1d4a-4c55-9a7e-0b8f6c2d9e11"'


def run(*args: str) -> Result:
    result = CliRunner().invoke(main, list(args))
    assert "Traceback" not in result.output
    return result


def test_ids_come_from_the_prompt_and_avoid_every_taken_one() -> None:
    assert slugify("What is the kernel trick?") == "kernel-trick"
    assert slugify("Cross-entropy vs. the confusion matrix: which one?") == "cross-entropy-vs-confusion-matrix-which"
    assert slugify("¿Qué es?") == "que-es"
    assert slugify("Bias–variance: why don't we care?") == "bias-variance-dont-we-care"
    assert slugify("???") == "note"
    assert assign_ids(["Kernel trick?", "Kernel trick?", "Bias?"], {"kernel-trick"}) == [
        "kernel-trick-2",
        "kernel-trick-3",
        "bias",
    ]


QA = """\ufeff---\r
deck: Imported\r
---\r
\r
## What is overfitting?\r
\r
Fitting noise.\r
\r
## What is the kernel trick?\r
<!-- tags: svm -->\r
\r
Inner products in feature space.\r
\r
## Has one?\r
<!-- id: has-one -->\r
\r
Yes.\r
\r
## What is overfitting?"""  # no final line end: one is added only where an id goes


def test_fix_add_ids_in_place_keeps_bom_and_crlf_and_is_idempotent(sample: Path, tmp_path: Path) -> None:
    qa = sample / "imported.md"
    qa.write_bytes(QA.encode("utf-8"))
    before = run("check", str(sample))
    assert before.exit_code == 1 and before.output.count("[id-missing]") == 3
    result = run("fix", str(sample), "--add-ids")
    assert result.exit_code == 0, result.output
    data = qa.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf---\r\n") and b"\n" not in data.replace(b"\r\n", b"")
    text = data.decode("utf-8")
    assert "## What is overfitting?\r\n<!-- id: overfitting -->\r\n\r\nFitting noise." in text
    assert "## What is the kernel trick?\r\n<!-- id: kernel-trick -->\r\n<!-- tags: svm -->" in text
    assert text.endswith("## What is overfitting?\r\n<!-- id: overfitting-2 -->\r\n")
    assert text.count("<!-- id: has-one -->") == 1
    assert "added 3 ids: overfitting, kernel-trick, overfitting-2" in result.output
    checked = run("check", str(sample), "-q")
    assert "[id-missing]" not in checked.output  # parsing gets further: the last heading really has no answer
    assert "note 'overfitting-2' has an empty answer [answer-empty]" in checked.output
    again = run("fix", str(sample), "--add-ids")
    assert again.exit_code == 0 and "nothing to do" in again.output and qa.read_bytes() == data


def test_fix_add_ids_never_reuses_an_id_the_lock_remembers(sample: Path, tmp_path: Path) -> None:
    (sample / "extra.md").write_text("## Bagging?\n<!-- id: bagging -->\n\nBootstrap.\n", encoding="utf-8")
    build_at(sample, tmp_path / "out")
    (sample / "extra.md").write_text("## Bagging?\n\nBootstrap aggregating.\n", encoding="utf-8")
    assert read_lock(sample / "deckgen.lock").notes["bagging"].removed is False
    dry = run("fix", str(sample), "--add-ids", "--dry-run")
    assert dry.exit_code == 0
    assert "+<!-- id: bagging-2 -->" in dry.output and f"--- a/{(sample / 'extra.md').as_posix()}" in dry.output
    assert "would add 1 id in 1 file; nothing written" in dry.output
    assert "<!-- id" not in (sample / "extra.md").read_text(encoding="utf-8")  # dry run wrote nothing
    check = run("check", str(sample))
    assert "add <!-- id: bagging-2 -->" in check.output  # the suggestion agrees with fix


def test_fix_through_a_real_process_and_without_the_flag(sample: Path) -> None:
    (sample / "extra.md").write_text("## Bagging?\n\nBootstrap.\n", encoding="utf-8")
    usage = run("fix", str(sample))
    assert usage.exit_code == 2 and "--add-ids" in usage.output
    done = subprocess.run(
        [sys.executable, "-m", "deckgen", "fix", "--add-ids", str(sample)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert (sample / "extra.md").read_text(encoding="utf-8") == "## Bagging?\n<!-- id: bagging -->\n\nBootstrap.\n"


def test_new_creates_a_missing_subdeck_file_and_folder(sample: Path) -> None:
    result = run("new", "What is a transformer?", str(sample), "--deck", "Deep Learning::Transformers")
    assert result.exit_code == 0, result.output
    created = sample / "deep-learning" / "transformers.md"
    assert created.read_text(encoding="utf-8").startswith("---\nkind: question\n---\n\n## What is a transformer?\n")
    odd = run("new", "Why?", str(sample), "--deck", "Q&A Corner")
    assert odd.exit_code == 0, odd.output
    assert (sample / "q-a-corner.md").read_text(encoding="utf-8").startswith('---\ndeck: "Q&A Corner"\n')
    stats = json.loads(run("stats", str(sample), "--format", "json").output)
    names = [s["name"] for s in stats["subdecks"]]
    assert "Deep Learning::Transformers" in names and "Q&A Corner" in names
    # the next note for the same subdeck goes into the same file, found by its full or its last name
    assert run("new", "What is attention?", str(sample), "--deck", "transformers").exit_code == 0
    assert created.read_text(encoding="utf-8").count("## ") == 2


def test_new_never_takes_an_id_from_a_lock_tombstone(sample: Path, tmp_path: Path) -> None:
    (sample / "extra.md").write_text("## What is bagging?\n<!-- id: bagging -->\n\nB.\n", encoding="utf-8")
    build_at(sample, tmp_path / "out")
    (sample / "extra.md").unlink()
    build_at(sample, tmp_path / "out", now=T0 + 10)
    assert read_lock(sample / "deckgen.lock").notes["bagging"].removed
    result = run("new", "What is bagging?", str(sample))
    assert "added 'bagging-2'" in result.output


def test_new_appends_in_the_file_s_own_line_ends(sample: Path) -> None:
    crlf = sample / "windows.md"
    crlf.write_bytes(b"\xef\xbb\xbf---\r\ndeck: Windows\r\n---\r\n\r\n## Q?\r\n<!-- id: q -->\r\n\r\nA.")
    assert run("new", "What is CRLF?", str(sample), "--deck", "Windows").exit_code == 0
    data = crlf.read_bytes()
    assert data.endswith(b"A.\r\n\r\n## What is CRLF?\r\n<!-- id: crlf -->\r\n\r\nWrite the answer here.\r\n")
    assert b"\n" not in data.replace(b"\r\n", b"") and data.startswith(b"\xef\xbb\xbf")


def test_new_in_an_empty_deck_needs_a_subdeck_name(tmp_path: Path) -> None:
    (tmp_path / "deckgen.toml").write_text(f'name = "Empty"\n{UUID_LINE}\n', encoding="utf-8")
    refused = run("new", "First?", str(tmp_path))
    assert refused.exit_code == 1 and "--deck NAME" in refused.output
    assert run("new", "First?", str(tmp_path), "--deck", "Basics").exit_code == 0
    assert (tmp_path / "basics.md").is_file()


# --- fix --add-ids as a property: any mix of headings, line ends and BOM ---------------------------

_PROMPTS = st.sampled_from(["What is bias?", "Bias?", "Kernel trick?", "¿Qué?", "Don't overfit?", "A b c d e f g h?"])
_NOTE = st.tuples(_PROMPTS, st.booleans(), st.booleans())  # prompt, has an id, has a tags comment


@settings(max_examples=60, deadline=None)
@given(
    notes=st.lists(_NOTE, min_size=1, max_size=8),
    newline=st.sampled_from(["\n", "\r\n"]),
    bom=st.booleans(),
    reserved=st.sets(st.sampled_from(["bias", "kernel-trick", "what-bias", "que", "dont-overfit"]), max_size=3),
)
def test_add_ids_gives_every_heading_a_free_unique_id_and_changes_nothing_else(
    notes: list[tuple[str, bool, bool]], newline: str, bom: bool, reserved: set[str]
) -> None:
    lines = []
    for n, (prompt, has_id, tags) in enumerate(notes):
        lines += [f"## {prompt}"] + ([f"<!-- id: given-{n} -->"] if has_id else []) + (["<!-- tags: t -->"] * tags)
        lines += ["", f"Answer {n}.", ""]
    path = Path("/deck/case.md")
    data = ("\ufeff" * bom + newline.join(lines) + newline).encode("utf-8")
    config = DeckConfig("D", "d.apkg", uuid="3f0b7c2e-1d4a-4c55-9a7e-0b8f6c2d9e11")
    deck, _ = parse_deck(config, Path("/deck"), {path: data})
    fixes = add_ids(deck, {path: data}, reserved)
    new = fixes[0].new if fixes else data
    fixed, problems = parse_deck(config, Path("/deck"), {path: new})
    assert not [p for p in problems if p.rule in ("id-missing", "id-duplicate", "id-invalid")]
    ids = [n.id for n in fixed.notes()]
    assert len(fixed.notes()) == len(notes) and len(set(ids)) == len(ids)
    added = set(fixes[0].ids) if fixes else set()
    assert not added & reserved and len(added) == sum(not has_id for _, has_id, _ in notes)
    assert new.startswith(b"\xef\xbb\xbf") == bom and (b"\r\n" in new) == (newline == "\r\n")
    removed = [
        line for line in new.decode("utf-8").split(newline) if not any(f"<!-- id: {i} -->" == line for i in added)
    ]
    assert newline.join(removed).encode("utf-8") == data  # only the id lines were inserted
    assert add_ids(fixed, {path: new}, reserved) == []  # idempotent
