"""Authoring helpers behind ``deckgen new`` and ``deckgen stats``: pure functions over the model."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from deckgen.errors import DeckgenError
from deckgen.sources.model import Category, Deck


def slugify(text: str, max_words: int = 6) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    words = re.findall(r"[a-z0-9]+", ascii_text.lower())
    stop = {"a", "an", "the", "of", "is", "are", "what", "how", "why", "do", "does", "you", "your", "in", "to", "and"}
    kept = [w for w in words if w not in stop] or words
    return "-".join(kept[:max_words]) or "note"


def id_prefix(category: Category) -> str:
    """The prefix most of the category's ids share (``eval-`` …), or '' if there is none."""
    prefixes = Counter(n.id.split("-", 1)[0] + "-" for n in category.notes if "-" in n.id)
    if prefixes:
        prefix, count = prefixes.most_common(1)[0]
        if count * 2 > len(category.notes):
            return prefix
    return ""


def fresh_id(deck: Deck, category: Category, prompt: str, retired: Iterable[str] = ()) -> str:
    """An id no note uses, was renamed from, or left behind when removed (``retired``, from the lock)."""
    taken = {key for n in deck.notes() for key in (n.id, *n.aliases)} | set(retired)
    base = id_prefix(category) + slugify(prompt)
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}-{n}", n + 1
    return candidate


@dataclass(frozen=True, slots=True)
class NewNote:
    path: Path
    id: str
    text: str  # to append to the file


def new_note(deck: Deck, prompt: str, deck_name: str | None, retired: Iterable[str] = ()) -> NewNote:
    """A note skeleton with a fresh unique id, for the category named ``deck_name`` (or the first).

    ``retired`` ids (removed notes, former ids; see ``Lock.retired_ids``) are never handed out: users'
    collections still hold those notes, and a new note under one would take over their reviews.
    """
    prompt = " ".join(prompt.split())
    if not prompt:
        raise DeckgenError("the prompt is empty")
    if not deck.categories:
        raise DeckgenError("the source folder has no category file yet; create one first")
    if deck_name is None:
        category = deck.categories[0]
    else:
        matches = [c for c in deck.categories if c.name.casefold() == deck_name.casefold()]
        if not matches:
            names = ", ".join(c.name for c in deck.categories)
            raise DeckgenError(f"no subdeck named {deck_name!r}; known: {names}")
        category = matches[0]
    note_id = fresh_id(deck, category, prompt, retired)
    text = f"\n## {prompt}\n<!-- id: {note_id} -->\n\nWrite the answer here.\n"
    return NewNote(category.location.path, note_id, text)


@dataclass(frozen=True, slots=True)
class Stats:
    subdecks: tuple[tuple[str, int], ...]
    kinds: tuple[tuple[str, int], ...]
    tags: tuple[tuple[str, int], ...]
    total: int


def stats(deck: Deck) -> Stats:
    kinds: Counter[str] = Counter()
    tags: Counter[str] = Counter()
    for category in deck.categories:
        for note in category.notes:
            kinds["cloze" if note.cloze else note.kind.value] += 1
            for tag in {*category.tags, *note.tags}:
                tags[tag] += 1
    return Stats(
        subdecks=tuple((c.name, len(c.notes)) for c in deck.categories),
        kinds=tuple(sorted(kinds.items())),
        tags=tuple(sorted(tags.items(), key=lambda kv: (-kv[1], kv[0]))),
        total=sum(len(c.notes) for c in deck.categories),
    )
