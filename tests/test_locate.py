"""Finding the deck like git finds a repository, where output goes, and `deckgen init`."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from conftest import REPO, Anki
from deckgen.build.locate import DeckNotFound, default_out_dir, find_deck
from deckgen.cli import main

UUID_LINE = 'uuid = "3f0b7c2e-1d4a-4c55-9a7e-0b8f6c2d9e11"'


def run(*args: str) -> Result:
    result = CliRunner().invoke(main, list(args))
    assert "Traceback" not in result.output
    return result


def deckgen(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The real command in a real process, run from ``cwd`` (discovery starts there)."""
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH", "")]))
    env = {**os.environ, "SOURCE_DATE_EPOCH": "1764000000", "PYTHONPATH": path}  # this checkout, from any cwd
    return subprocess.run(
        [sys.executable, "-m", "deckgen", *args], cwd=cwd, capture_output=True, text=True, env=env, check=False
    )


def _deck(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "deckgen.toml").write_text(f'name = "Found"\n{UUID_LINE}\n', encoding="utf-8")
    return folder


def test_discovery_prefers_source_then_here_then_the_nearest_parent(tmp_path: Path) -> None:
    project = tmp_path / "project"
    source = _deck(project / "source")
    assert find_deck(None, cwd=project) == source
    (project / "deckgen.toml").write_text('name = "Other"\n', encoding="utf-8")
    assert find_deck(None, cwd=project) == source  # ./source/deckgen.toml wins over ./deckgen.toml
    (project / "deckgen.toml").unlink()
    deep = project / "source" / "deep-learning" / "cnn"
    deep.mkdir(parents=True)
    assert find_deck(None, cwd=deep) == source  # nearest parent with one
    flat = _deck(tmp_path / "flat")
    assert find_deck(None, cwd=flat) == flat
    assert find_deck(project, cwd=tmp_path) == source  # a project folder given as SOURCE
    assert find_deck(flat / "nope") == flat / "nope"  # given explicitly: reported later, with its path
    with pytest.raises(DeckNotFound, match="deckgen init"):
        find_deck(None, cwd=tmp_path)


def test_output_goes_beside_a_source_folder_else_inside_the_deck(tmp_path: Path) -> None:
    assert default_out_dir(tmp_path / "project" / "source") == tmp_path / "project" / "build"
    assert default_out_dir(tmp_path / "flat") == tmp_path / "flat" / "build"


def test_commands_find_the_deck_from_any_subfolder_and_write_build_beside_it(tmp_path: Path) -> None:
    project = tmp_path / "project"
    assert run("init", str(project), "--name", "Found").exit_code == 0
    inside = project / "source"
    built = deckgen("build", cwd=inside)
    assert built.returncode == 0, built.stderr
    assert (project / "build" / "found.apkg").is_file()
    assert "wrote ../build/found.apkg" in built.stdout
    assert not (inside / "build").exists()
    assert deckgen("check", "--strict", cwd=project).returncode == 0
    nested = project / "source" / "notes-in-progress"
    nested.mkdir()
    added = deckgen("new", "What is a CNN?", "--deck", "Deep Learning::CNNs", cwd=nested)
    assert added.returncode == 0, added.stderr
    assert (inside / "deep-learning" / "cnns.md").is_file() and "added 'cnn'" in added.stdout
    nowhere = deckgen("stats", cwd=tmp_path)
    assert nowhere.returncode == 1 and "error: no deck found" in nowhere.stderr and "Traceback" not in nowhere.stderr


def test_every_command_takes_source_positionally_and_says_how_it_finds_the_deck() -> None:
    for command in ("build", "check", "diff", "new", "fix", "stats", "preview"):
        text = run(command, "--help").output
        assert "[SOURCE]" in text.splitlines()[0], (command, text.splitlines()[0])
        assert "nearest parent folder" in text, command


def test_init_writes_a_deck_that_builds_strictly_and_imports_into_anki(tmp_path: Path, anki: Anki) -> None:
    project = tmp_path / "my-first-deck"
    result = run("init", str(project))
    assert result.exit_code == 0, result.output
    config = tomllib.loads((project / "source" / "deckgen.toml").read_text(encoding="utf-8"))
    assert config["name"] == "My First Deck"
    assert uuid.UUID(config["uuid"]).version == 4
    assert "/build/" in (project / ".gitignore").read_text(encoding="utf-8").splitlines()
    checked = run("check", str(project), "--strict")
    assert checked.exit_code == 0 and "0 error(s), 0 warning(s)" in checked.output
    built = run("build", str(project))
    assert built.exit_code == 0, built.output
    log = anki.import_package(project / "build" / "my-first-deck.apkg")
    assert log.new == 2
    assert {d.name for d in anki.col.decks.all_names_and_ids()} >= {"My First Deck", "My First Deck::Basics"}
    assert len(anki.col.find_cards('"deck:My First Deck::Basics"')) == 2  # one basic card, one cloze card
    other = tmp_path / "other"
    run("init", str(other))
    other_uuid = tomllib.loads((other / "source" / "deckgen.toml").read_text(encoding="utf-8"))["uuid"]
    assert other_uuid != config["uuid"]  # a fresh identity per deck


def test_init_refuses_an_existing_deck_and_keeps_an_existing_gitignore(tmp_path: Path) -> None:
    (tmp_path / ".gitignore").write_text("*.pyc", encoding="utf-8")
    assert run("init", str(tmp_path)).exit_code == 0
    assert (tmp_path / ".gitignore").read_text(encoding="utf-8") == (
        "*.pyc\n# deckgen build output (the .apkg and its cache)\n/build/\n"
    )
    config = (tmp_path / "source" / "deckgen.toml").read_bytes()
    (tmp_path / "source" / "basics.md").write_text("mine", encoding="utf-8")
    again = run("init", str(tmp_path))
    assert again.exit_code == 1 and "never overwrites a deck" in again.output
    assert (tmp_path / "source" / "deckgen.toml").read_bytes() == config
    assert (tmp_path / "source" / "basics.md").read_text(encoding="utf-8") == "mine"
    flat = _deck(tmp_path / "flat")
    assert run("init", str(flat)).exit_code == 1
