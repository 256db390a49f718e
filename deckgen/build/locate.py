"""Find the deck a command works on, the way git finds its repository, and where its output goes.

Rule (every command's ``--help`` repeats it): SOURCE if given (a deck folder, or a project folder
holding ``source/``); else ``./source/deckgen.toml``; else ``./deckgen.toml``; else the nearest
parent folder holding one of those two. Output goes to ``build/`` beside the deck: next to the
``source/`` folder when the deck folder is called ``source`` (this repository's layout, and what
``deckgen init`` creates), else inside the deck folder.
"""

from __future__ import annotations

import os
from pathlib import Path

from deckgen.errors import DeckgenError
from deckgen.sources.config import CONFIG_NAME

SOURCE_FOLDER = "source"
BUILD_FOLDER = "build"

DISCOVERY_HELP = (
    "SOURCE is the deck folder (holding deckgen.toml) or a project folder holding source/. "
    "Without it: ./source, else ., else the nearest parent folder with a deckgen.toml."
)


class DeckNotFound(DeckgenError):
    """No deckgen.toml here or in any parent folder."""


def _relative(path: Path, cwd: Path) -> Path:
    """``path`` relative to ``cwd`` when that is shorter to read (messages show it), else absolute."""
    try:
        rel = Path(os.path.relpath(path, cwd))
    except ValueError:  # another drive on Windows
        return path
    return rel if len(rel.parts) <= len(path.parts) else path


def find_deck(source: Path | None, cwd: Path | None = None) -> Path:
    """The deck folder a command works on (see the module docstring for the rule)."""
    if source is not None:
        if not (source / CONFIG_NAME).is_file() and (source / SOURCE_FOLDER / CONFIG_NAME).is_file():
            return source / SOURCE_FOLDER
        return source  # a missing folder or config is reported by read_sources, with its path
    here = (cwd or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        for candidate in (folder / SOURCE_FOLDER, folder):
            if (candidate / CONFIG_NAME).is_file():
                return _relative(candidate, here) if cwd is None else candidate
    raise DeckNotFound(
        f"no deck found: no {SOURCE_FOLDER}/{CONFIG_NAME} or {CONFIG_NAME} in {here} or any parent folder; "
        "create one with 'deckgen init', or pass the deck folder as SOURCE"
    )


def default_out_dir(deck: Path) -> Path:
    """``build/`` beside a deck folder called ``source``, else ``build/`` inside the deck folder."""
    resolved = deck.resolve()
    if resolved.name == SOURCE_FOLDER:
        target = resolved.parent / BUILD_FOLDER
        if deck.is_absolute():
            return target
        return _relative(target, Path.cwd().resolve())
    return deck / BUILD_FOLDER
