"""The typed model of a deck: frozen values with their source locations. No I/O here."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import ClassVar


@dataclass(frozen=True, slots=True)
class SourceLocation:
    """A place in a source file; ``line`` and ``col`` are 1-based."""

    path: Path
    line: int
    col: int = 1

    def __str__(self) -> str:
        return f"{self.path.as_posix()}:{self.line}:{self.col}"


class Kind(Enum):
    QUESTION = "question"
    TIP = "tip"
    FAQ = "faq"

    @property
    def label(self) -> str:
        return {"question": "Question", "tip": "Tip", "faq": "FAQ"}[self.value]


@dataclass(frozen=True, slots=True)
class Body:
    """A Markdown text block and the line of the source file it starts on."""

    text: str
    line: int

    def location(self, path: Path, offset: int = 0) -> SourceLocation:
        """Location of character ``offset`` of ``text`` inside ``path``."""
        before = self.text[:offset]
        line = self.line + before.count("\n")
        col = offset - (before.rfind("\n") + 1) + 1
        return SourceLocation(path, line, col)


@dataclass(frozen=True, slots=True)
class Note:
    """One author note: a ``## `` heading, its metadata comments and its answer."""

    kind: ClassVar[Kind]

    id: str
    prompt: str
    answer: Body
    location: SourceLocation
    extra: Body | None = None
    tags: tuple[str, ...] = ()
    # Earlier ids of this note (``was:``). The lock maps any of them to the note's recorded GUID;
    # only a note the lock has never seen derives its GUID, from the first one.
    aliases: tuple[str, ...] = ()
    source: str = ""
    cloze: bool = False
    reverse: bool = False
    type_in: str = ""
    ignore: frozenset[str] = field(default_factory=frozenset)
    # ``<!-- guid: ... -->``: the GUID an existing Anki note already has (kept on import into deckgen).
    guid: str = ""
    # ``<!-- id: x; restore -->``: this is the removed note ``x`` brought back, not a new note reusing its id.
    restore: bool = False
    # Where the id comment stands (identity errors point there); the heading when unknown.
    id_location: SourceLocation | None = None

    @property
    def identity(self) -> str:
        """The id a note the lock has never seen derives its GUID from: its first ``was:`` id, else its id."""
        return self.aliases[0] if self.aliases else self.id


@dataclass(frozen=True, slots=True)
class Question(Note):
    kind: ClassVar[Kind] = Kind.QUESTION


@dataclass(frozen=True, slots=True)
class Tip(Note):
    kind: ClassVar[Kind] = Kind.TIP


@dataclass(frozen=True, slots=True)
class Faq(Note):
    kind: ClassVar[Kind] = Kind.FAQ


NOTE_CLASSES: dict[Kind, type[Note]] = {Kind.QUESTION: Question, Kind.TIP: Tip, Kind.FAQ: Faq}


@dataclass(frozen=True, slots=True)
class Category:
    """One Markdown file: a subdeck of the root deck."""

    name: str
    kind: Kind
    location: SourceLocation
    notes: tuple[Note, ...]
    tags: tuple[str, ...] = ()
    order: int | None = None
    intro: str = ""
    reverse: bool = False
    # (prompt, heading line) of every note heading that has no id comment: for id suggestions and fix --add-ids.
    missing_ids: tuple[tuple[str, int], ...] = ()

    @property
    def tag(self) -> str:
        """The tag every note of the category carries (Anki tags cannot hold spaces)."""
        return "category::" + "-".join(self.name.lower().split())


@dataclass(frozen=True, slots=True)
class FolderDeck:
    """A folder of category files: a subdeck holding their subdecks (named by its ``_deck.md`` or its name)."""

    name: str  # full name below the root deck, e.g. "Deep Learning::Architectures"
    location: SourceLocation  # its _deck.md, or the folder itself
    order: int | None = None
    intro: str = ""  # the _deck.md body: the subdeck's description


@dataclass(frozen=True, slots=True)
class LintConfig:
    """Thresholds of the spaced-repetition lint, settable in ``deckgen.toml``."""

    max_answer_words: int = 80
    max_list_items: int = 5
    max_code_lines: int = 30
    max_cloze_deletions: int = 4
    disable: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True, slots=True)
class DeckConfig:
    """The values of ``source/deckgen.toml``."""

    name: str
    output: str
    # The deck's identity (a UUID written once by ``deckgen init``): note GUIDs and deck ids derive
    # from it, so two decks using the same note ids never touch each other's notes in Anki.
    uuid: str
    lint: LintConfig = field(default_factory=LintConfig)


@dataclass(frozen=True, slots=True)
class Deck:
    """The whole deck: its configuration and its categories in display order."""

    config: DeckConfig
    root: Path
    categories: tuple[Category, ...]
    # Folders holding category files, parents before children; the root's _deck.md (name "") first.
    folders: tuple[FolderDeck, ...] = ()

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def intro(self) -> str:
        """The root deck's description (from the root folder's ``_deck.md``)."""
        return next((f.intro for f in self.folders if not f.name), "")

    def folder_deck_name(self, folder: FolderDeck) -> str:
        return f"{self.config.name}::{folder.name}" if folder.name else self.config.name

    def notes(self) -> tuple[Note, ...]:
        return tuple(n for c in self.categories for n in c.notes)

    def subdeck_name(self, category: Category) -> str:
        return f"{self.config.name}::{category.name}"


# --- Identity: changing these functions re-creates every note / subdeck in every user's collection ---


def note_guid(deck_uuid: str, identity: str) -> str:
    """The Anki GUID a new note gets, from the deck's uuid and the note's original id.

    Never include content here: Anki matches notes across imports by GUID, so a GUID that
    changed with the text would turn every edit into a new note and orphan its reviews. The deck
    uuid keeps two decks that use the same note id apart. Once a note is built its GUID is
    recorded in the lock, which is the authority from then on (renames keep it).
    """
    return "dg" + hashlib.sha256(f"deckgen-note:{deck_uuid}:{identity}".encode()).hexdigest()[:18]


def deck_id(deck_uuid: str, name: str) -> int:
    """The Anki id of the deck (or subdeck) ``name`` of the deck with ``deck_uuid``: stable, not shared."""
    digest = hashlib.sha256(f"deckgen-deck:{deck_uuid}:{name}".encode()).hexdigest()
    return (1 << 30) + int(digest[:12], 16) % (1 << 40)
