"""What an import produces before it becomes files: categories of notes in deckgen's terms."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from deckgen.sources.model import SourceLocation


@dataclass(frozen=True, slots=True)
class ImportedNote:
    """One note read from a foreign format; every text is Markdown in deckgen's dialect."""

    prompt: str  # one line
    answer: str
    location: SourceLocation  # where it came from (input file and line, or the Anki note)
    extra: str = ""
    tags: tuple[str, ...] = ()
    guid: str = ""  # an Anki note's GUID, kept so its reviews continue (the `guid` note option)
    id: str = ""  # the id to keep if it is free (a note that came from a deckgen deck has one)
    kind: str = ""  # question / tip / faq, when the input says (a deckgen deck's Kind field)
    tts: str = ""  # the `tts` option's value (``en_US speed=0.9``), when the input reads the note aloud
    source: str = ""
    cloze: bool = False
    reverse: bool = False
    type_in: str = ""


@dataclass(frozen=True, slots=True)
class ImportedCategory:
    """One future category file: a subdeck name, its notes and a file name to suggest."""

    deck: str
    stem: str
    notes: tuple[ImportedNote, ...]
    location: SourceLocation
    intro: str = ""
    root: str = ""  # the input's own title or root deck: names a new deck's deckgen.toml
    kind: str = ""  # front matter kind, when not the default question
    tts: str = ""  # front matter tts, when every note shares it
    # Media to copy beside the category file: relative path (as the notes reference it) → bytes.
    media: Mapping[str, bytes] = field(default_factory=dict)
