"""Turn imported categories into deckgen source files: readable unique ids, category text, media.

``plan_import`` is pure (it decides every path and byte); ``write_plan`` is the only writer and
refuses to overwrite anything that already exists.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

from deckgen.authoring import slugify
from deckgen.build.lock import atomic_file
from deckgen.errors import DeckgenError
from deckgen.sources.config import CONFIG_NAME

from .model import ImportedCategory, ImportedNote


def free_id(prompt: str, taken: set[str], wanted: str = "") -> str:
    """``wanted`` if free, else a readable id from the prompt alone that is not in ``taken`` (which it then joins)."""
    if wanted and wanted not in taken:
        taken.add(wanted)
        return wanted
    base = slugify(re.sub(r"[^\w]+", " ", prompt.replace("'", "")))  # "bias–variance" → bias-variance, not biasvariance
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}-{n}", n + 1
    taken.add(candidate)
    return candidate


def note_text(note: ImportedNote, note_id: str, file_tts: str = "") -> str:
    """One note in deckgen's source format (``file_tts``: the tts its file's front matter sets)."""
    options = [f"<!-- id: {note_id} -->"]
    if note.guid:
        options.append(f"<!-- guid: {note.guid} -->")
    if note.tags:
        options.append(f"<!-- tags: {' '.join(note.tags)} -->")
    if note.source:
        options.append(f"<!-- source: {note.source} -->")
    if note.cloze:
        options.append("<!-- cloze -->")
    if note.reverse:
        options.append("<!-- reverse -->")
    if note.type_in:
        options.append(f"<!-- type-in: {note.type_in} -->")
    if note.tts != file_tts:
        options.append(f"<!-- tts: {note.tts or 'off'} -->")
    text = f"## {note.prompt}\n" + "\n".join(options) + f"\n\n{note.answer}\n"
    if note.extra:
        text += f"\n<!-- extra -->\n{note.extra}\n"
    return text


def category_text(category: ImportedCategory, ids: Sequence[str]) -> str:
    """A whole category file: front matter naming the subdeck, the intro, then the notes."""
    values = {"deck": category.deck}
    values |= {key: value for key, value in (("kind", category.kind), ("tts", category.tts)) if value}
    front = yaml.safe_dump(values, allow_unicode=True, sort_keys=False, width=1000)
    parts = [f"---\n{front}---\n"]
    if category.intro:
        parts.append(category.intro + "\n")
    parts += [note_text(note, note_id, category.tts) for note, note_id in zip(category.notes, ids, strict=True)]
    return "\n".join(parts)


@dataclass(frozen=True, slots=True)
class PlannedCategory:
    path: Path
    deck: str
    ids: tuple[str, ...]
    prompts: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ImportPlan:
    """Every file an import writes, decided before anything is written."""

    source: Path
    categories: tuple[PlannedCategory, ...]
    files: tuple[tuple[Path, bytes], ...]  # in writing order; media first, deckgen.toml last
    renamed_decks: tuple[tuple[str, str], ...] = ()  # (asked for, given): a name already in use

    @property
    def notes(self) -> int:
        return sum(len(c.ids) for c in self.categories)


def _unique(name: str, used: set[str]) -> str:
    candidate, n = name, 2
    while candidate.casefold() in used:
        candidate, n = f"{name} {n}", n + 1
    used.add(candidate.casefold())
    return candidate


def plan_import(
    categories: Iterable[ImportedCategory],
    source: Path,
    *,
    taken_ids: Iterable[str],
    existing_decks: Iterable[str],
    root_name: str,
    new_config: str | None,
) -> ImportPlan:
    """Decide file names, subdeck names and ids for ``categories`` in the folder ``source``.

    ``new_config`` (None when the folder has a ``deckgen.toml``) is what a new one holds after the
    deck name: its ``uuid = ...`` line, made by the caller so that this stays deterministic.

    ``taken_ids`` must hold every id the deck has ever used (its notes, rename aliases and every
    lock entry, removed ones too): an id that once named a note keeps meaning that note's GUID.
    """
    taken = set(taken_ids)
    decks = {d.casefold() for d in existing_decks}
    stems: set[str] = set()
    planned: list[PlannedCategory] = []
    files: list[tuple[Path, bytes]] = []
    renamed: list[tuple[str, str]] = []
    media: dict[Path, bytes] = {}
    for category in categories:
        deck = _unique(category.deck, decks)
        if deck != category.deck:
            renamed.append((category.deck, deck))
        stem = slugify(deck, max_words=5) if deck != category.deck else category.stem
        path = source / f"{_unique_stem(stem, source, stems)}.md"
        ids = tuple(free_id(note.prompt, taken, note.id) for note in category.notes)
        files.append((path, category_text(replace(category, deck=deck), ids).encode("utf-8")))
        planned.append(PlannedCategory(path, deck, ids, tuple(note.prompt for note in category.notes)))
        for rel, data in category.media.items():
            target = source / rel
            if media.get(target, data) != data:
                raise DeckgenError(f"two different media files would both be written to {target}")
            media[target] = data
    media_files = [(p, d) for p, d in sorted(media.items()) if not (p.is_file() and p.read_bytes() == d)]
    if new_config is not None:  # a deck of its own: its name and the lines ``new_config`` holds (its uuid)
        config = f"name = {json.dumps(root_name, ensure_ascii=False)}\n{new_config}"
        files.append((source / CONFIG_NAME, config.encode()))
    return ImportPlan(source, tuple(planned), tuple(media_files + files), tuple(renamed))


def _unique_stem(stem: str, source: Path, used: set[str]) -> str:
    candidate, n = stem, 2
    while candidate in used or (source / f"{candidate}.md").exists():
        candidate, n = f"{stem}-{n}", n + 1
    used.add(candidate)
    return candidate


def write_plan(plan: ImportPlan) -> None:
    """Write every planned file; nothing that exists is overwritten (checked before any write)."""
    clashes = [path for path, _ in plan.files if path.exists()]
    if clashes:
        raise DeckgenError(f"{clashes[0]} already exists; deckgen import never overwrites a file")
    for path, data in plan.files:
        try:
            with atomic_file(path) as fh:
                fh.write(data)
        except OSError as exc:
            raise DeckgenError(f"cannot write {path}: {exc.strerror or exc}") from exc
