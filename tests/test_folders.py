"""Folders are subdecks: names and order from front matter or a folder's _deck.md, imported into real Anki."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import T0, Anki, build_at
from deckgen.build.pipeline import compile_deck, package_inputs
from deckgen.cli import main

NOTE = "## {q}\n<!-- id: {id} -->\n\nAn answer.\n"


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    src = tmp_path / "source"
    _write(src / "deckgen.toml", 'name = "Tree"\nuuid = "3f0b7c2e-1d4a-4c55-9a7e-0b8f6c2d9e11"\n')
    _write(src / "general.md", "---\norder: 1\n---\n\n" + NOTE.format(q="General?", id="general"))
    _write(src / "README.md", "# About this deck\n\nNot a category.\n")
    _write(src / "_drafts.md", "## Draft?\n\nNot a category either.\n")
    _write(
        src / "deep-learning" / "_deck.md",
        "---\ndeck: Deep Learning\norder: 2\n---\n\nNeural networks, **from the ground up**.\n",
    )
    _write(src / "deep-learning" / "transformers.md", NOTE.format(q="Attention?", id="attention"))
    _write(src / "deep-learning" / "cnn.md", "---\ndeck: CNNs\norder: 1\n---\n\n" + NOTE.format(q="Conv?", id="conv"))
    _write(src / "deep-learning" / "advanced" / "attention-variants.md", NOTE.format(q="Flash?", id="flash"))
    _write(src / "statistics" / "tests.md", NOTE.format(q="T-test?", id="t-test"))
    _write(src / "images" / "notes.txt", "a folder without Markdown is no subdeck")
    return src


# order first, then file and folder names alike (Advanced/ before transformers.md)
EXPECTED = [
    "General",
    "Deep Learning::CNNs",
    "Deep Learning::Advanced::Attention Variants",
    "Deep Learning::Transformers",
    "Statistics::Tests",
]


def test_folders_become_nested_subdecks_in_a_deterministic_order(tree: Path) -> None:
    compiled = compile_deck(tree, T0)
    assert compiled.diagnostics == ()
    assert [c.name for c in compiled.deck.categories] == EXPECTED
    by_id = {rn.note.id: rn for rn in compiled.notes}
    assert by_id["flash"].deck == "Tree::Deep Learning::Advanced::Attention Variants"
    assert "category::deep-learning::advanced::attention-variants" in by_id["flash"].tags
    decks, _, _ = package_inputs(compiled)
    names = [d.name for d in decks]
    assert names[0] == "Tree" and "Tree::Deep Learning" in names and "Tree::Deep Learning::Advanced" in names
    description = {d.name: d.description for d in decks}["Tree::Deep Learning"]
    assert "<strong>from the ground up</strong>" in description


def test_subdeck_hierarchy_is_created_in_anki(tree: Path, tmp_path: Path, anki: Anki) -> None:
    result = build_at(tree, tmp_path / "build")
    log = anki.import_package(result.output)
    assert log.new == 5
    names = {d.name for d in anki.col.decks.all_names_and_ids()}
    assert {f"Tree::{name}" for name in EXPECTED} <= names
    assert {"Tree::Deep Learning", "Tree::Deep Learning::Advanced", "Tree::Statistics"} <= names
    assert not any("README" in n or "Drafts" in n for n in names)
    (card,) = anki.col.find_cards('"deck:Tree::Deep Learning::Advanced::Attention Variants"')
    assert anki.col.get_card(card).note()["Id"] == "flash"
    dl = anki.col.decks.by_name("Tree::Deep Learning")
    assert dl is not None and "from the ground up" in dl["desc"]
    # the parent deck holds its children's cards, as in Anki's deck list
    assert len(anki.col.find_cards('"deck:Tree::Deep Learning"')) == 3


def test_order_and_names_come_from_front_matter_and_deck_files(tree: Path) -> None:
    _write(tree / "statistics" / "_deck.md", "---\ndeck: Stats & Probability\norder: 0\n---\n")
    _write(tree / "deep-learning" / "cnn.md", NOTE.format(q="Conv?", id="conv"))  # no order: by file name now
    names = [c.name for c in compile_deck(tree, T0).deck.categories]
    assert names == [
        "Stats & Probability::Tests",
        "General",
        "Deep Learning::Advanced::Attention Variants",
        "Deep Learning::Cnn",
        "Deep Learning::Transformers",
    ]


def test_root_deck_file_describes_the_root_deck_only(tree: Path) -> None:
    _write(tree / "_deck.md", "All of *it*.\n")
    decks, _, _ = package_inputs(compile_deck(tree, T0))
    assert decks[0].name == "Tree" and "<em>it</em>" in decks[0].description
    _write(tree / "_deck.md", "---\ndeck: Renamed\n---\n")
    result = CliRunner().invoke(main, ["check", str(tree)])
    assert (
        result.exit_code == 1 and "_deck.md:1:1: error: the root folder's _deck.md can only describe" in result.output
    )


def test_deck_files_report_unknown_keys_and_headings(tree: Path) -> None:
    _write(tree / "statistics" / "_deck.md", "---\nkind: tip\n---\n\n## A note here?\n")
    result = CliRunner().invoke(main, ["check", str(tree), "--format", "json"])
    found = [(Path(d["path"]).name, d["line"], d["rule"]) for d in json.loads(result.output)["diagnostics"]]
    assert found == [("_deck.md", 2, "front-matter-unknown-key"), ("_deck.md", 5, "heading-level")]
    assert result.exit_code == 1


def test_same_file_name_in_two_folders_is_two_subdecks_and_ids_stay_deck_wide(tree: Path) -> None:
    _write(tree / "statistics" / "transformers.md", NOTE.format(q="Box-Cox?", id="attention"))
    result = CliRunner().invoke(main, ["check", str(tree)])
    assert result.exit_code == 1
    assert "[deck-duplicate]" not in result.output and "duplicate id 'attention'" in result.output


def test_verbose_lists_readme_and_underscore_files_as_skipped(tree: Path) -> None:
    (tree / ".hidden").mkdir()
    _write(tree / ".hidden" / "secret.md", NOTE.format(q="Hidden?", id="hidden"))
    _write(tree / "other-deck" / "deckgen.toml", 'name = "Other"\n')
    _write(tree / "other-deck" / "notes.md", NOTE.format(q="Other?", id="other"))
    result = CliRunner().invoke(main, ["check", str(tree), "-v"])
    assert result.exit_code == 0, result.output
    assert f"skipped {(tree / 'README.md').as_posix()} (README and _* files are not categories)" in result.output
    assert f"skipped {(tree / '_drafts.md').as_posix()}" in result.output
    assert [c.name for c in compile_deck(tree, T0).deck.categories] == EXPECTED  # no hidden or nested deck
