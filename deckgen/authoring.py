"""Authoring helpers behind ``deckgen new``, ``deckgen fix --add-ids`` and ``deckgen stats``.

Pure functions over the model and file text: they say what to write, the CLI writes it.
"""

from __future__ import annotations

import difflib
import json
import re
from collections import Counter
from collections.abc import Set
from dataclasses import dataclass
from pathlib import Path

from deckgen.errors import DeckgenError
from deckgen.render.markdown import note_cards
from deckgen.sources.check import PLACEHOLDER
from deckgen.sources.config import deck_name_from_path
from deckgen.sources.ids import assign_ids, free_id
from deckgen.sources.ids import slugify as slugify  # re-exported: its home before sources/ids.py
from deckgen.sources.model import Category, Deck, FolderDeck
from deckgen.sources.parse import FOLDER_FILE


def taken_ids(deck: Deck, reserved: Set[str]) -> set[str]:
    """Every id a new note must not take: the deck's ids and aliases, and every id the lock remembers."""
    return {key for n in deck.notes() for key in (n.id, *n.aliases)} | set(reserved)


# --- new -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewNote:
    path: Path
    id: str
    text: str  # to append to ``path``
    # Files to create first, in order (a new category file's front matter, a new folder's _deck.md).
    create: tuple[tuple[Path, str], ...] = ()


def new_note(deck: Deck, prompt: str, deck_name: str | None, reserved: Set[str] = frozenset()) -> NewNote:
    """A note skeleton with a fresh id, for the subdeck named ``deck_name`` (default: the first).

    A subdeck that does not exist yet gets a new category file (``A::B`` makes a folder ``a/``).
    The id comes from the prompt alone and is free in the deck and in the lock (``reserved``).
    """
    prompt = " ".join(prompt.split())
    if not prompt:
        raise DeckgenError("the prompt is empty")
    create: tuple[tuple[Path, str], ...] = ()
    if deck_name is None:
        if not deck.categories:
            raise DeckgenError("the deck has no category file yet; name its subdeck with --deck NAME to create one")
        path = deck.categories[0].location.path
    else:
        category = _find_category(deck, deck_name)
        if category is not None:
            path = category.location.path
        else:
            path, create = _new_category_file(deck, deck_name)
    note_id = free_id(prompt, taken_ids(deck, reserved))
    text = f"\n## {prompt}\n<!-- id: {note_id} -->\n\n{PLACEHOLDER}\n"
    return NewNote(path, note_id, text, create)


def appended(data: bytes, text: str) -> bytes:
    """``data`` (a category file) with ``text`` (LF line ends) appended in the file's own line ends."""
    old = data.decode("utf-8")
    newline = _newline(old)
    if old and not old.endswith(("\n", "\r")):
        old += newline
    return (old + text.replace("\n", newline)).encode("utf-8")


def _newline(text: str) -> str:
    """The line end a file uses: CRLF, CR or LF (the default)."""
    return "\r\n" if "\r\n" in text else ("\r" if "\r" in text and "\n" not in text else "\n")


def _find_category(deck: Deck, name: str) -> Category | None:
    """The category with this full subdeck name, or the only one with this last name part."""
    key = _normal(name)
    exact = [c for c in deck.categories if _normal(c.name) == key]
    if exact:
        return exact[0]
    leaf = [c for c in deck.categories if _normal(c.name.split("::")[-1]) == key]
    return leaf[0] if len(leaf) == 1 else None


def _normal(name: str) -> str:
    return "::".join(" ".join(part.split()).casefold() for part in name.split("::"))


def file_slug(name: str) -> str:
    """A file or folder name for a subdeck name: every word kept, lowercase, '-' between."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "deck"


def _new_category_file(deck: Deck, name: str) -> tuple[Path, tuple[tuple[Path, str], ...]]:
    parts = [" ".join(p.split()) for p in name.split("::")]
    if not all(parts):
        raise DeckgenError(f"invalid subdeck name {name!r}: empty part between '::'")
    create: list[tuple[Path, str]] = []
    folder, full = deck.root, ""
    for part in parts[:-1]:
        full = f"{full}::{part}" if full else part
        known = _find_folder(deck, full)
        if known is not None:
            folder = known
            continue
        folder = _unused(folder / file_slug(part), "")
        if deck_name_from_path(folder) != part:
            create.append((folder / FOLDER_FILE, f"---\ndeck: {json.dumps(part, ensure_ascii=False)}\n---\n"))
    leaf = parts[-1]
    path = _unused(folder / file_slug(leaf), ".md")
    front = f"deck: {json.dumps(leaf, ensure_ascii=False)}\n" if deck_name_from_path(path) != leaf else ""
    create.append((path, f"---\n{front}kind: question\n---\n"))
    return path, tuple(create)


def _find_folder(deck: Deck, name: str) -> Path | None:
    for folder in deck.folders:
        if folder.name and _normal(folder.name) == _normal(name):
            return _folder_path(folder)
    return None


def _folder_path(folder: FolderDeck) -> Path:
    path = folder.location.path
    return path.parent if path.name == FOLDER_FILE else path


def _unused(base: Path, suffix: str) -> Path:
    candidate, n = base.with_name(base.name + suffix), 2
    while candidate.exists():
        candidate, n = base.with_name(f"{base.name}-{n}{suffix}"), n + 1
    return candidate


# --- fix --add-ids ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FileFix:
    path: Path
    old: bytes
    new: bytes
    ids: tuple[str, ...]  # the ids added, in file order

    def diff(self) -> str:
        """A unified diff of the change (text decoded as UTF-8, line ends shown as LF)."""
        old = split_lines(self.old.decode("utf-8").removeprefix("\ufeff"))
        new = split_lines(self.new.decode("utf-8").removeprefix("\ufeff"))
        name = self.path.as_posix()
        lines = difflib.unified_diff(old, new, f"a/{name}", f"b/{name}")
        return "".join(line if line.endswith(("\n", "\r")) else line + "\n" for line in lines)


_LINE_RE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")


def split_lines(text: str) -> list[str]:
    """Lines with their ends, split only at CRLF, CR and LF: the line numbers parsing reports."""
    return _LINE_RE.findall(text)


def add_ids(deck: Deck, files: dict[Path, bytes], reserved: Set[str] = frozenset()) -> list[FileFix]:
    """For every note heading without an id, an ``<!-- id: ... -->`` line right under it.

    Ids are readable (from the prompt), unique in the deck and never one the lock remembers
    (``reserved``, removed notes included). Each file keeps its BOM and its line ends. Running it
    again changes nothing: every heading then has an id.
    """
    missing = [(c.location.path, prompt, line) for c in deck.categories for prompt, line in c.missing_ids]
    new_ids = assign_ids([prompt for _, prompt, _ in missing], taken_ids(deck, reserved))
    by_file: dict[Path, list[tuple[int, str]]] = {}
    for (path, _, line), note_id in zip(missing, new_ids, strict=True):
        by_file.setdefault(path, []).append((line, note_id))
    fixes = []
    for path, inserts in sorted(by_file.items()):
        old = files[path]
        fixes.append(FileFix(path, old, _insert_ids(old, inserts), tuple(i for _, i in sorted(inserts))))
    return fixes


def _insert_ids(data: bytes, inserts: list[tuple[int, str]]) -> bytes:
    """``data`` with ``<!-- id: x -->`` after each given 1-based line, in the file's own line ends."""
    text = data.decode("utf-8")
    lines = split_lines(text)
    newline = _newline(text)
    for line, note_id in sorted(inserts, reverse=True):
        heading = lines[line - 1]
        if not heading.endswith(("\n", "\r")):
            lines[line - 1] = heading + newline
        lines.insert(line, f"<!-- id: {note_id} -->{newline}")
    return "".join(lines).encode("utf-8")


# --- stats -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Count:
    name: str
    notes: int
    cards: int = 0


@dataclass(frozen=True, slots=True)
class Stats:
    subdecks: tuple[Count, ...]  # in deck order, full names below the root
    notetypes: tuple[Count, ...]
    kinds: tuple[Count, ...]  # question, tip, faq (cloze is a notetype, not a kind)
    tags: tuple[Count, ...]  # most used first
    notes: int
    cards: int


def stats(deck: Deck, top: int | None = None) -> Stats:
    """Notes and cards per subdeck and notetype, notes per kind and per tag (the ``top`` most used)."""
    kinds: Counter[str] = Counter()
    kind_cards: Counter[str] = Counter()
    types: Counter[str] = Counter()
    type_cards: Counter[str] = Counter()
    tags: Counter[str] = Counter()
    subdecks = []
    for category in deck.categories:
        cards = 0
        for note in category.notes:
            nt, ords = note_cards(note)
            n = len(ords)
            cards += n
            kinds[note.kind.value] += 1
            kind_cards[note.kind.value] += n
            notetype = nt.name
            types[notetype] += 1
            type_cards[notetype] += n
            for tag in {*category.tags, *note.tags}:
                tags[tag] += 1
        subdecks.append(Count(category.name, len(category.notes), cards))
    ranked = sorted(tags.items(), key=lambda kv: (-kv[1], kv[0]))
    return Stats(
        subdecks=tuple(subdecks),
        notetypes=tuple(Count(name, types[name], type_cards[name]) for name in sorted(types)),
        kinds=tuple(Count(name, kinds[name], kind_cards[name]) for name in sorted(kinds)),
        tags=tuple(Count(name, n) for name, n in (ranked if top is None else ranked[:top])),
        notes=sum(s.notes for s in subdecks),
        cards=sum(s.cards for s in subdecks),
    )


# --- init ------------------------------------------------------------------------------------------

EXAMPLE_FILE = "basics.md"
GITIGNORE_LINE = "/build/"

EXAMPLE_CATEGORY = """\
---
deck: Basics
tags: [example]
---

Text above the first note is not a card: it becomes this subdeck's description in Anki.
Replace these two notes with your own, or add files next to this one (one file per subdeck;
a folder of files becomes a subdeck with subdecks).

## What does deckgen turn into an Anki card?
<!-- id: what-deckgen-makes -->

Every `## ` heading with an id comment: the heading is the front of the card, the text below
it the back. Markdown, code and math like $e^{i\\pi} + 1 = 0$ all work.

<!-- extra -->
Change the text as often as you like but keep the id: it is how Anki recognises the note after
each rebuild, so its reviews are kept.

## Squaring a sum
<!-- id: square-of-a-sum -->
<!-- cloze -->

$(a + b)^2$ = {{c1::$a^2 + 2ab + b^2$}}
"""


def init_files(project: Path, name: str, deck_uuid: str) -> list[tuple[Path, str]]:
    """The files ``deckgen init`` creates: ``source/deckgen.toml``, an example category file and a
    ``.gitignore`` entry for ``build/``. Refuses a folder that already holds a deck."""
    for existing in (project / "source" / "deckgen.toml", project / "deckgen.toml"):
        if existing.exists():
            raise DeckgenError(f"{existing} already exists; deckgen init never overwrites a deck")
    if "::" in name or not name.strip():
        raise DeckgenError(f"invalid deck name {name!r}: it must be non-empty and without '::'")
    config = (
        "# deckgen configuration: see README.md, section 'Source format'.\n"
        f"name = {json.dumps(name.strip(), ensure_ascii=False)}\n"
        "# The deck's identity: keep it as it is (a new uuid would make a different deck).\n"
        f'uuid = "{deck_uuid}"\n'
    )
    files = [
        (project / "source" / "deckgen.toml", config),
        (project / "source" / EXAMPLE_FILE, EXAMPLE_CATEGORY),
    ]
    gitignore = project / ".gitignore"
    old = gitignore.read_text(encoding="utf-8") if gitignore.is_file() else ""
    if GITIGNORE_LINE not in old.splitlines():
        lead = "" if not old or old.endswith("\n") else "\n"
        files.append((gitignore, f"{old}{lead}# deckgen build output (the .apkg and its cache)\n{GITIGNORE_LINE}\n"))
    return files
