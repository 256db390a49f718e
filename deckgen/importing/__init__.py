"""``deckgen import``: bring Markdown Q&A lists and Anki decks into deckgen sources.

Readers (``qa`` for Markdown, ``deckgen.anki.reader`` for .apkg files and collections) turn each
input into ``ImportedCategory`` values; ``write`` gives them ids and file names and writes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from deckgen.authoring import taken_ids
from deckgen.build.pipeline import load_deck, lock_ids
from deckgen.errors import DeckgenError, Diagnostic, Severity, SourceError
from deckgen.sources.config import CONFIG_NAME, fresh_uuid_line
from deckgen.sources.model import SourceLocation

from .media import copy_local_media
from .model import ImportedCategory, ImportedNote
from .qa import parse_qa
from .write import ImportPlan, plan_import, write_plan

__all__ = ["ImportPlan", "ImportedCategory", "ImportedNote", "plan_sources_import", "read_inputs", "write_plan"]

MARKDOWN_SUFFIXES = {".md", ".markdown"}


def read_inputs(
    inputs: Sequence[Path], collection: Path | None = None, deck: str | None = None
) -> tuple[list[ImportedCategory], str, list[Diagnostic]]:
    """Read every input into categories; returns them, a root deck name and the diagnostics."""
    categories: list[ImportedCategory] = []
    problems: list[Diagnostic] = []
    roots: list[str] = []
    for path in inputs:
        suffix = path.suffix.lower()
        if suffix in MARKDOWN_SUFFIXES:
            try:
                data = path.read_bytes()
            except OSError as exc:
                problems.append(Diagnostic(SourceLocation(path, 1), "unreadable", f"cannot read: {exc.strerror}"))
                continue
            found, found_problems = parse_qa(data, path)
            found, media_problems = copy_local_media(found, path.parent)
            found_problems += media_problems
        elif suffix == ".apkg":
            from deckgen.anki.reader import read_apkg

            found, found_problems = read_apkg(path)
        else:
            raise DeckgenError(f"{path}: cannot import {suffix or 'a file without suffix'}; give .md or .apkg files")
        categories += found
        problems += found_problems
        roots += [c.root for c in found if c.root]
    if collection is not None:
        from deckgen.anki.reader import read_collection

        if deck is None:
            raise DeckgenError("--collection needs --deck NAME (the Anki deck to import, with its subdecks)")
        found, found_problems = read_collection(collection, deck)
        categories += found
        problems += found_problems
        roots += [c.root for c in found if c.root]
    return categories, (roots[0] if roots else "Imported"), problems


def plan_sources_import(
    inputs: Sequence[Path], source: Path, collection: Path | None = None, deck: str | None = None
) -> tuple[ImportPlan, list[Diagnostic]]:
    """Everything ``deckgen import`` would write into ``source``, and what it noticed on the way."""
    categories, root, problems = read_inputs(inputs, collection, deck)
    errors = [p for p in problems if p.severity is Severity.ERROR]
    if errors:
        raise SourceError(errors)
    config_exists = (source / CONFIG_NAME).is_file()
    taken: set[str] = set()
    decks: list[str] = []
    if config_exists:
        existing, _, lock = load_deck(source)  # notes with errors are left out by the parser; the lock has their ids
        taken = taken_ids(existing, lock_ids(lock))
        decks = [c.name for c in existing.categories]
    plan = plan_import(
        categories,
        source,
        taken_ids=taken,
        existing_decks=decks,
        root_name=root,
        new_config=None if config_exists else fresh_uuid_line() + "\n",  # a new deck's own identity
    )
    return plan, problems
