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

from deckgen.authoring import file_slug
from deckgen.build.lock import atomic_file
from deckgen.errors import DeckgenError
from deckgen.sources.config import CONFIG_NAME, deck_name_from_path
from deckgen.sources.ids import free_id
from deckgen.sources.parse import FOLDER_FILE

from .model import ImportedCategory, ImportedNote


def _fresh_id(note: ImportedNote, taken: set[str]) -> str:
    """The note's own id if it has one that is free (a deckgen deck's), else one from its prompt."""
    new = note.id if note.id and note.id not in taken else free_id(note.prompt, taken)
    taken.add(new)
    return new


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
    paths: set[Path] = set()
    planned: list[PlannedCategory] = []
    files: list[tuple[Path, bytes]] = []
    renamed: list[tuple[str, str]] = []
    media: dict[Path, bytes] = {}
    for category in categories:
        deck = _unique(category.deck, decks)
        if deck != category.deck:
            renamed.append((category.deck, deck))
        *parents, leaf = deck.split("::")
        folder, folder_files = _folders(source, parents)
        files += [f for f in folder_files if f not in files]
        stem = category.stem if deck == category.deck and not parents else file_slug(leaf)
        path = _unique_path(folder, stem, paths)
        ids = tuple(_fresh_id(note, taken) for note in category.notes)
        named = replace(category, deck=leaf, notes=tuple(_relocated(n, len(parents)) for n in category.notes))
        files.append((path, category_text(named, ids).encode("utf-8")))
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


def _unique_path(folder: Path, stem: str, used: set[Path]) -> Path:
    candidate, n = folder / f"{stem}.md", 2
    while candidate in used or candidate.exists():
        candidate, n = folder / f"{stem}-{n}.md", n + 1
    used.add(candidate)
    return candidate


def _folders(source: Path, names: list[str]) -> tuple[Path, list[tuple[Path, bytes]]]:
    """The folder of a nested subdeck (``A::B`` → ``a/``) and the ``_deck.md`` files that name its
    folders when the folder name alone would not give the subdeck's name."""
    folder, files = source, []
    for name in names:
        folder = folder / file_slug(name)
        if deck_name_from_path(folder) != name and not (folder / FOLDER_FILE).exists():
            front = yaml.safe_dump({"deck": name}, allow_unicode=True, width=1000)
            files.append((folder / FOLDER_FILE, f"---\n{front}---\n".encode()))
    return folder, files


_MEDIA_REF_RE = re.compile(r"(\]\(|\[sound:|src=[\"'])((?:images|sounds)/)")


def _relocated(note: ImportedNote, depth: int) -> ImportedNote:
    """The note's ``images/`` and ``sounds/`` references (top of the source folder), from ``depth`` folders down."""
    if not depth:
        return note

    def move(text: str) -> str:
        return _MEDIA_REF_RE.sub(lambda m: m.group(1) + "../" * depth + m.group(2), text)

    return replace(note, prompt=move(note.prompt), answer=move(note.answer), extra=move(note.extra))


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
