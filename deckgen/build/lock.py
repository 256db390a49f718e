"""The lock file ``source/deckgen.lock``: each note's content hashes and when its content last changed.

Anki updates an existing note on import only when the incoming ``mod`` is strictly newer than the
one it holds. Stamping every note with the build time would rewrite every note on every import;
so a note's ``mod`` is the time its content last changed, kept here, and a changed note always
gets a time strictly greater than its previous one, even within the same second.

A changed note's ``mod`` is also later than the real clock at the start of the build (``wall_clock``),
whatever ``now`` (SOURCE_DATE_EPOCH) says: a user who edited the note inside Anki before this build
holds a ``mod`` up to that clock (the same second included), and Anki would ignore an incoming note
that is not strictly newer, forever. Unchanged
notes keep the lock's ``mod``, so the same sources and lock still give the same bytes.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import BinaryIO, NamedTuple

import orjson

from deckgen.anki.notetypes import NoteType
from deckgen.build.hazards import Hazard, find_hazards
from deckgen.errors import Diagnostic, SourceError
from deckgen.render.markdown import RenderedNote, note_cards
from deckgen.sources.model import Note, SourceLocation, note_guid

LOCK_NAME = "deckgen.lock"
LOCK_VERSION = 2
UUID_LINE = 3  # where ``dumps`` writes the deck uuid


class NoteEntry(NamedTuple):
    """What the lock remembers of one note (under its current id).

    ``guid`` is the authority on the note's identity: once recorded it never changes, whatever the
    note is renamed to. ``parts`` holds a short hash of each field plus the pseudo-fields "tags"
    (hash), "deck" (the subdeck name) and "notetype" (model id); ``cards`` the card ords built;
    ``was`` every former id (retired: never handed to another note); ``removed`` marks a tombstone.
    (A named tuple: as immutable as a frozen dataclass, and 2.6x faster to make — a build reads one per note.)
    """

    guid: str
    mod: int
    parts: Mapping[str, str]
    cards: tuple[int, ...] = ()
    was: tuple[str, ...] = ()
    removed: bool = False


@dataclass(frozen=True, slots=True)
class NotetypeEntry:
    hash: str
    mod: int


@dataclass(frozen=True, slots=True)
class Lock:
    notes: Mapping[str, NoteEntry] = field(default_factory=dict)
    notetypes: Mapping[str, NotetypeEntry] = field(default_factory=dict)
    uuid: str = ""  # the deck the lock belongs to ("" in a lock written before deckgen recorded it)
    # Each entry as read, with its line's text: ``dumps`` writes an entry it is given back as it was read.
    texts: Mapping[str, tuple[NoteEntry, str]] = field(default_factory=dict, compare=False, repr=False)

    def retired_ids(self) -> frozenset[str]:
        """Ids no new note may take: removed notes' ids and every former id of a renamed note."""
        return frozenset(
            [k for k, v in self.notes.items() if v.removed] + [a for v in self.notes.values() for a in v.was]
        )


@dataclass(frozen=True, slots=True)
class Change:
    id: str
    fields: tuple[str, ...] = ()
    old_id: str = ""


@dataclass(frozen=True, slots=True)
class LockDiff:
    """What a build changes relative to the lock."""

    added: tuple[str, ...] = ()
    changed: tuple[Change, ...] = ()
    removed: tuple[str, ...] = ()
    renamed: tuple[Change, ...] = ()
    unchanged: int = 0
    orphans: tuple[str, ...] = ()  # removed earlier or now: still in users' collections
    # Notes whose identity cannot be settled from the lock (id-retired, id-rename-conflict, guid-changed …).
    problems: tuple[Diagnostic, ...] = ()
    # Edits Anki's importer would not apply (notetype changed, deck moved, cards removed); see hazards.py.
    hazards: tuple[Hazard, ...] = ()

    @property
    def any(self) -> bool:
        return bool(self.added or self.changed or self.removed or self.renamed)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def field_hashes(fields: Sequence[str]) -> bytes:
    """The lock's hash of each field, 8 bytes each (``_digest`` is their hex), in one bytes object: it
    runs for every field of every note in every build, in the workers when they rendered or netted it."""
    sha256, empty = hashlib.sha256, bytes(8)  # (an empty field has no part: its bytes are never read)
    return b"".join([sha256(value.encode()).digest()[:8] if value else empty for value in fields])


# Field hashes computed already (by the workers), each with the very tuple of fields it is of:
# ``id(fields)`` → (fields, ``field_hashes``). A note whose fields are another object is hashed afresh.
KnownHashes = Mapping[int, tuple[tuple[str, ...], bytes]]


def note_parts(rn: RenderedNote, known: KnownHashes | None = None) -> dict[str, str]:
    found = known.get(id(rn.fields)) if known else None
    hashes = found[1] if found is not None and found[0] is rn.fields else field_hashes(rn.fields)
    names, hexes = rn.notetype.fields, hashes.hex()
    parts = {names[i]: hexes[16 * i : 16 * i + 16] for i, value in enumerate(rn.fields) if value}
    parts["tags"] = _tags_digest(rn.tags)
    parts["deck"] = rn.deck
    parts["notetype"] = str(rn.notetype.id)
    return parts


@functools.lru_cache(maxsize=1 << 14)
def _tags_digest(tags: tuple[str, ...]) -> str:
    """``_digest`` of the tags, once for each set of tags (thousands of notes share a few)."""
    return _digest(" ".join(tags))


def _next_mod(old: int | None, now: int, wall_clock: int = 0) -> int:
    """The ``mod`` of a changed note (or notetype) last changed at ``old``; see the module docstring."""
    return now if old is None else max(now, wall_clock + 1, old + 1)


@dataclass(frozen=True, slots=True)
class _Claim:
    """A source note matched to a lock entry, and how: by its own id (or a former id), ``was:`` or guid."""

    note: Note
    key: str
    how: str  # "id", "was" or "guid"


class _Identities:
    """Settles which lock entry (hence which GUID) each source note continues."""

    def __init__(self, lock: Lock, deck_uuid: str) -> None:
        self.old = lock.notes
        self.deck_uuid = deck_uuid
        self.index: dict[str, str] = {}  # current or former id -> lock key
        self.index.update((key, key) for key in self.old)
        for key, entry in self.old.items():
            for alias in entry.was:
                self.index.setdefault(alias, key)
        self.by_guid = {entry.guid: key for key, entry in self.old.items()}
        self.problems: list[Diagnostic] = []

    def _error(self, note: Note, rule: str, message: str, hint: str) -> None:
        self.problems.append(Diagnostic(note.id_location or note.location, rule, message, hint))

    def match(self, note: Note) -> _Claim | bool | None:
        """The lock entry ``note`` continues; None for a new note; False after reporting a problem."""
        entry = self.old.get(note.id)
        if entry is not None and not entry.removed and not note.aliases and not note.guid:
            return _Claim(note, note.id, "id")  # the common case: a known note under its own id
        keys: dict[str, str] = {}
        if note.id in self.index:
            keys[self.index[note.id]] = "id"
        for alias in note.aliases:
            if alias in self.index:
                keys.setdefault(self.index[alias], "was")
        if note.guid and note.guid in self.by_guid:
            keys.setdefault(self.by_guid[note.guid], "guid")
        if len(keys) > 1:
            names = ", ".join(f"'{k}' ({self.old[k].guid})" for k in sorted(keys))
            self._error(
                note,
                "id-rename-conflict",
                f"note '{note.id}' names {len(keys)} different notes of the lock: {names}; "
                "it can keep only one GUID and the other notes' reviews would be lost or taken over",
                "keep in <!-- id: ...; was: ... --> only the ids of the one note this continues, "
                "or give this note a new id that nothing else used",
            )
            return False
        if not keys:
            if note.guid:
                return None
            derived = note_guid(self.deck_uuid, note.identity)
            if derived in self.by_guid:  # only possible if the lock lost a former id; be safe anyway
                self._error(
                    note,
                    "id-retired",
                    f"id '{note.identity}' gives the GUID the lock records for '{self.by_guid[derived]}'",
                    "give this note an id that was never used in this deck",
                )
                return False
            return None
        key, how = next(iter(keys.items()))
        entry = self.old[key]
        if note.guid and note.guid != entry.guid:
            self._error(
                note,
                "guid-changed",
                f"the lock records GUID {entry.guid} for note '{note.id}'; changing it to {note.guid} "
                "would make Anki create a new note without its reviews",
                f"write <!-- guid: {entry.guid} --> (or remove the guid option), or give this note a new id",
            )
            return False
        if entry.removed and how == "id" and not note.restore:
            what = f"removed note '{key}'" if key == note.id else f"note '{key}' (removed; '{note.id}' is its old id)"
            self._error(
                note,
                "id-retired",
                f"id '{note.id}' belongs to the {what}, which stays in users' collections: "
                "a new note under this id would take over its reviews",
                f"if this is that same note brought back, write <!-- id: {note.id}; restore -->; "
                "otherwise pick a new id (deckgen new never hands out a retired one)",
            )
            return False
        return _Claim(note, key, how)

    def resolve(self, notes: Iterable[Note]) -> tuple[list[_Claim], list[Note]]:
        """(notes continuing a lock entry, new notes); every note with a problem is in neither."""
        claims: list[_Claim] = []
        fresh: list[Note] = []
        listed = list(notes)
        twice = {i for i, n in Counter(n.id for n in listed).items() if n > 1}
        for note in listed:
            if note.id in twice:
                continue  # id-duplicate reports it; which of the two continues the lock is undecidable
            found = self.match(note)
            if isinstance(found, _Claim):
                claims.append(found)
            elif found is None:
                fresh.append(note)
        return self.settle(claims), fresh

    def settle(self, claims: list[_Claim]) -> list[_Claim]:
        """Claims left after refusing every second claim on one lock entry."""
        if len({claim.key for claim in claims}) == len(claims):
            return claims  # (the common case: one claim on each entry)
        by_key: dict[str, list[_Claim]] = {}
        for claim in claims:
            by_key.setdefault(claim.key, []).append(claim)
        kept: list[_Claim] = []
        for key, group in by_key.items():
            owner = next((c for c in group if c.note.id == key), None) or (group[0] if len(group) == 1 else None)
            for claim in group:
                if claim is owner:
                    kept.append(claim)
                    continue
                note = claim.note
                if claim.how == "id":
                    self._error(
                        note,
                        "id-retired",
                        f"id '{note.id}' is a former id of note '{key}' (GUID {self.old[key].guid}); "
                        "reusing it would take over that note's reviews",
                        "pick an id that was never used in this deck",
                    )
                else:
                    self._error(
                        note,
                        "id-rename-conflict",
                        f"note '{note.id}' and another note both claim the history of '{key}' "
                        f"(GUID {self.old[key].guid})",
                        "only one note can continue it: remove the was:/guid from the other",
                    )
        return kept


def foreign_lock(lock: Lock, deck_uuid: str, path: Path) -> list[Diagnostic]:
    """A lock recorded for another deck (a copied folder, an edited uuid): its GUIDs are that deck's."""
    if not lock.uuid or lock.uuid == deck_uuid:
        return []
    return [
        Diagnostic(
            SourceLocation(path, UUID_LINE),
            "lock-foreign",
            f"this lock belongs to the deck with uuid {lock.uuid}, but deckgen.toml says {deck_uuid}: "
            "its GUIDs would make the two decks overwrite each other's notes in Anki",
            "if this folder is a copy made to start a new deck, delete its deckgen.lock; if the uuid in "
            f'deckgen.toml was changed by mistake, put back uuid = "{lock.uuid}"',
        )
    ]


def lock_findings(
    lock: Lock, notes: Sequence[tuple[Note, str]], deck_uuid: str
) -> tuple[list[Diagnostic], list[Hazard]]:
    """The identity problems and import hazards ``update_lock`` would find for (note, subdeck) pairs,
    known without rendering (for ``deckgen check``)."""
    deck_of = {id(note): deck for note, deck in notes}  # by object: the same id may stand twice
    identities = _Identities(lock, deck_uuid)
    claims, fresh = identities.resolve(note for note, _ in notes)
    hazards: list[Hazard] = []
    for claim in claims:
        note, deck = claim.note, deck_of[id(claim.note)]
        prev = lock.notes[claim.key]
        notetype, cards = note_cards(note)
        shape = {"deck": deck, "notetype": str(notetype.id)}
        hazards += find_hazards(note, prev.guid, prev.parts, prev.cards, shape, cards)
    if not fresh:
        return identities.problems, hazards
    entries = {note.id: NoteEntry(note.guid or note_guid(deck_uuid, note.identity), 0, {}) for note in fresh}
    entries.update({k: v for k, v in lock.notes.items() if k not in entries})
    return identities.problems + _duplicate_guids(entries, {note.id: note for note in fresh}), hazards


def update_lock(
    lock: Lock,
    notes: Iterable[RenderedNote],
    notetypes: Iterable[NoteType],
    now: int,
    deck_uuid: str,
    wall_clock: int = 0,
    known: KnownHashes | None = None,
) -> tuple[Lock, LockDiff]:
    """The lock after this build, and the diff from the old one. ``now`` is the build time (s);
    ``wall_clock`` the real time, which changed notes' ``mod`` never precedes (module docstring);
    ``known`` field hashes computed already.

    The lock decides each note's GUID: a note it knows (by id, any ``was:`` id in any order, or
    ``guid:``) keeps the recorded one; only a new note derives one from ``deck_uuid``.
    """
    old = dict(lock.notes)
    rendered = {id(rn.note): rn for rn in notes}  # by object: the same id may stand twice
    identities = _Identities(lock, deck_uuid)
    claims, fresh_notes = identities.resolve(rn.note for rn in rendered.values())
    fresh = [rendered[id(note)] for note in fresh_notes]
    new: dict[str, NoteEntry] = {}
    added, changed, renamed = [], [], []
    hazards: list[Hazard] = []
    unchanged = 0
    for claim in claims:
        rn, prev = rendered[id(claim.note)], old[claim.key]
        note = rn.note
        parts, cards = note_parts(rn, known), rn.card_ords
        if prev.was or note.aliases or claim.key != note.id:
            was = tuple(sorted({*prev.was, claim.key, *note.aliases} - {note.id}))
        else:
            was = ()
        if claim.key != note.id:
            renamed.append(Change(note.id, old_id=claim.key))
        same = prev.parts == parts and prev.cards == cards
        if not same:  # (a hazard is a difference)
            hazards += find_hazards(note, prev.guid, prev.parts, prev.cards, parts, cards)
        if not same or prev.removed:
            diff_fields = tuple(
                sorted(k for k in parts.keys() | prev.parts.keys() if parts.get(k) != prev.parts.get(k))
            ) + (("cards",) if prev.cards != cards else ())
            changed.append(Change(note.id, diff_fields if not prev.removed else ("restored",)))
            new[note.id] = NoteEntry(prev.guid, _next_mod(prev.mod, now, wall_clock), parts, cards, was)
        else:
            unchanged += claim.key == note.id
            new[note.id] = prev if was == prev.was else NoteEntry(prev.guid, prev.mod, parts, cards, was)
    for rn in fresh:
        note = rn.note
        guid = note.guid or note_guid(deck_uuid, note.identity)
        added.append(note.id)
        # a pinned guid is a note users already have (imported from Anki): its mod must beat their edits
        mod = max(now, wall_clock + 1) if note.guid else now
        new[note.id] = NoteEntry(guid, mod, note_parts(rn, known), rn.card_ords, tuple(sorted(set(note.aliases))))
    consumed = {c.key for c in claims}
    removed = sorted(k for k, v in old.items() if k not in consumed and not v.removed)
    for key, entry in old.items():
        if key not in consumed and key not in new:
            new[key] = entry._replace(removed=True)
    problems = identities.problems + _duplicate_guids(new, {rn.note.id: rn.note for rn in fresh})
    nt_entries = {}
    for nt in notetypes:
        prev_nt = lock.notetypes.get(nt.name)
        if prev_nt is not None and prev_nt.hash == nt.style_hash:
            nt_entries[nt.name] = prev_nt
        else:
            prev_mod = prev_nt.mod if prev_nt else None
            nt_entries[nt.name] = NotetypeEntry(nt.style_hash, _next_mod(prev_mod, now, wall_clock))
    orphans = tuple(sorted(k for k, v in new.items() if v.removed))
    diff = LockDiff(
        tuple(sorted(added)),
        tuple(sorted(changed, key=lambda c: c.id)),
        tuple(removed),
        tuple(sorted(renamed, key=lambda c: c.id)),
        unchanged,
        orphans,
        tuple(problems),
        tuple(sorted(hazards, key=lambda h: (h.note_id, h.kind.value))),
    )
    return Lock(dict(sorted(new.items())), dict(sorted(nt_entries.items())), deck_uuid, lock.texts), diff


def _duplicate_guids(entries: Mapping[str, NoteEntry], fresh: Mapping[str, Note]) -> list[Diagnostic]:
    """A new note whose GUID another entry already has (two pinned guids alike): one would overwrite the other."""
    if not fresh:  # (only a new note can take a GUID that is already someone's)
        return []
    owner: dict[str, str] = {}
    problems = []
    for key in sorted(entries, key=lambda k: (k in fresh, k)):
        guid = entries[key].guid
        if guid in owner and key in fresh:
            note = fresh[key]
            problems.append(
                Diagnostic(
                    note.id_location or note.location,
                    "guid-duplicate",
                    f"note '{key}' has GUID {guid}, which note '{owner[guid]}' already has",
                    "every note needs its own guid; remove the guid option from one of them",
                )
            )
        owner.setdefault(guid, key)
    return problems


# --- reading and writing ----------------------------------------------------------------------


class LockFileError(SourceError):
    """The lock cannot be read or is damaged: one located ``lock-invalid`` diagnostic."""

    def __init__(self, path: Path, message: str, line: int = 1, col: int = 1) -> None:
        super().__init__([Diagnostic(SourceLocation(path, line, col), "lock-invalid", message, RECOVER_HINT)])


def dumps(lock: Lock) -> str:
    """One line per note so that version-control diffs show exactly which notes changed."""
    lines = ["{", f'  "version": {LOCK_VERSION},']
    if lock.uuid:
        lines.append(f'  "uuid": {json.dumps(lock.uuid)},')  # on UUID_LINE
    lines.append('  "notetypes": {')
    nts = [
        f"    {json.dumps(k)}: {json.dumps({'hash': v.hash, 'mod': v.mod}, sort_keys=True)}"
        for k, v in lock.notetypes.items()
    ]
    lines.append(",\n".join(nts))
    lines += ["  },", '  "notes": {']
    texts = lock.texts
    notes = [
        f"    {_json_str(key)}: {known[1] if (known := texts.get(key)) and known[0] is entry else _entry_json(entry)}"
        for key, entry in lock.notes.items()
    ]
    lines.append(",\n".join(notes))
    lines += ["  }", "}", ""]
    return "\n".join(line for line in lines if line)


_json_str = json.encoder.encode_basestring  # what json.dumps(text, ensure_ascii=False) gives


def _entry_json(entry: NoteEntry) -> str:
    """``json.dumps(entry as a dict, sort_keys=True, ensure_ascii=False)``, spelt out (twice as fast)."""
    parts = ", ".join(f"{_json_str(k)}: {_json_str(v)}" for k, v in sorted(entry.parts.items()))
    out = f'{{"cards": [{", ".join(map(str, entry.cards))}], "guid": {_json_str(entry.guid)}, "mod": {entry.mod}, '
    out += f'"parts": {{{parts}}}'
    if entry.removed:
        out += ', "removed": true'
    if entry.was:
        out += f', "was": [{", ".join(map(_json_str, entry.was))}]'
    return out + "}"


# A mod is a time in seconds; anything negative or after 2099 is damage, not a time deckgen wrote.
MOD_RANGE = range(0, 4_102_444_800)
MAX_CARD_ORD = 65536  # Anki's own limit: card ords are 16-bit
RECOVER_HINT = (
    "restore it from version control (git checkout -- deckgen.lock); deleting it loses the recorded GUIDs "
    "and retired ids (see 'A damaged lock' in the README)"
)


class _Damaged(ValueError):
    """A lock value of the wrong type or range; the message names it, ``key`` the entry holding it."""

    def __init__(self, message: str, key: str = "", pattern: str = "") -> None:
        super().__init__(message)
        self.key = key
        self.pattern = pattern  # where to point instead, when there is no key


def _int(value: object, what: str, valid: range) -> int:
    if type(value) is not int or value not in valid:
        raise _Damaged(f"{what} must be an integer from {valid.start} to {valid.stop - 1}, not {value!r}")
    return value


def _str(value: object, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise _Damaged(f"{what} must be a non-empty string, not {value!r}")
    return value


def _mapping(value: object, what: str) -> dict[str, object]:
    if not isinstance(value, dict):
        raise _Damaged(f"{what} must be an object, not {type(value).__name__}")
    return value


def _list(value: object, what: str) -> list[object]:
    if not isinstance(value, list):
        raise _Damaged(f"{what} must be a list, not {type(value).__name__}")
    return value


_ENTRY_KEYS = frozenset({"guid", "mod", "parts", "cards", "was", "removed"})


def _note_entry(key: str, raw: object) -> NoteEntry:
    """A validated entry: the common well-formed one in a few checks, anything else by ``_checked_entry``."""
    if type(raw) is dict and raw.keys() <= _ENTRY_KEYS:
        guid, mod, parts, cards = raw.get("guid"), raw.get("mod"), raw.get("parts"), raw.get("cards")
        was, removed = raw.get("was", []), raw.get("removed", False)
        if (
            type(guid) is str
            and guid
            and type(mod) is int
            and mod in MOD_RANGE
            and type(parts) is dict
            and all(type(v) is str and v for v in parts.values())
            and type(cards) is list
            and all(type(c) is int and 0 <= c < MAX_CARD_ORD for c in cards)
            and type(was) is list
            and all(type(a) is str and a for a in was)
            and type(removed) is bool
        ):
            return NoteEntry(guid, mod, parts, tuple(cards), tuple(was), removed)
    return _checked_entry(key, raw)


def _checked_entry(key: str, raw: object) -> NoteEntry:
    where = f"note {key!r}"
    try:
        value = _mapping(raw, where)
        unknown = set(value) - {"guid", "mod", "parts", "cards", "was", "removed"}
        if unknown:
            raise _Damaged(f"{where} has unknown keys {sorted(unknown)}")
        parts = _mapping(value.get("parts"), f"{where}: parts")
        removed = value.get("removed", False)
        if not isinstance(removed, bool):
            raise _Damaged(f"{where}: removed must be true or false, not {removed!r}")
        return NoteEntry(
            _str(value.get("guid"), f"{where}: guid"),
            _int(value.get("mod"), f"{where}: mod", MOD_RANGE),
            {k: _str(v, f"{where}: part {k!r}") for k, v in parts.items()},
            tuple(_int(c, f"{where}: card", range(MAX_CARD_ORD)) for c in _list(value.get("cards"), f"{where}: cards")),
            tuple(_str(a, f"{where}: former id") for a in _list(value.get("was", []), f"{where}: was")),
            removed,
        )
    except _Damaged as exc:
        raise _Damaged(str(exc), key) from None


def _notetype_entry(key: str, raw: object) -> NotetypeEntry:
    try:
        v = _mapping(raw, f"notetype {key!r}")
        return NotetypeEntry(
            _str(v.get("hash"), f"notetype {key!r}: hash"), _int(v.get("mod"), f"notetype {key!r}: mod", MOD_RANGE)
        )
    except _Damaged as exc:
        raise _Damaged(str(exc), key) from None


def _no_constant(name: str) -> object:
    raise _Damaged(f"{name} is not a number deckgen writes", pattern=r"(?<![\w\"])-?" + name)


def _line_of(text: str, key: str) -> int:
    """The line of the entry ``key`` (the lock holds one entry per line), else 1."""
    needle = "\n    " + json.dumps(key, ensure_ascii=False) + ":"
    at = text.find(needle)
    return 1 if at < 0 or not key else text.count("\n", 0, at) + 2


def _from_data(value: object) -> Lock:
    data = _mapping(value, "the lock")
    if data.get("version") != LOCK_VERSION:
        found = data.get("version")
        raise _Damaged(f"unsupported lock version {found!r} (this deckgen reads {LOCK_VERSION})", "version")
    notes = {k: _note_entry(k, v) for k, v in _mapping(data.get("notes"), "notes").items()}
    nts = {k: _notetype_entry(k, v) for k, v in _mapping(data.get("notetypes"), "notetypes").items()}
    return Lock(notes, nts, _str(data["uuid"], "uuid") if "uuid" in data else "")


def _entry_texts(
    text: str, notes: Mapping[str, NoteEntry], raw: Mapping[str, object]
) -> dict[str, tuple[NoteEntry, str]]:
    """Each entry of ``notes`` (read from ``text`` as ``raw``) and its text, when ``text`` holds one entry
    per line as ``dumps`` writes it, each line's text reading back as its entry's value. Otherwise nothing."""
    lines = text.split("\n")
    try:
        start = lines.index('  "notes": {') + 1
    except ValueError:
        return {}
    section = lines[start : start + len(notes) + 1]
    if len(section) <= len(notes) or not section[len(notes)].startswith("  }"):
        return {}
    out = {}
    for line, (key, entry) in zip(section, notes.items(), strict=False):
        head = f"    {_json_str(key)}: "
        if not line.startswith(head):
            return {}
        value = line[len(head) :].removesuffix(",")
        try:
            if orjson.loads(value) != raw[key]:
                return {}
        except orjson.JSONDecodeError:
            return {}
        out[key] = (entry, value)
    return out


def loads(text: str, path: Path, *, texts: bool = True) -> Lock:
    """Parse and validate the lock; anything of the wrong type or range is a located LockFileError.
    ``texts``: keep each entry's text, for ``dumps`` to write unchanged entries as they were read."""
    try:  # orjson reads a sound lock faster; a damaged one is read again by json, which names the damage
        data = orjson.loads(text)
        lock = _from_data(data)
    except (ValueError, RecursionError):  # (orjson's errors and _Damaged are ValueErrors)
        pass
    else:
        return replace(lock, texts=_entry_texts(text, lock.notes, data["notes"])) if texts else lock
    try:
        return _from_data(json.loads(text, parse_constant=_no_constant))
    except json.JSONDecodeError as exc:
        raise LockFileError(path, f"the lock file is damaged: {exc.msg}", exc.lineno, exc.colno) from exc
    except RecursionError as exc:
        raise LockFileError(path, "the lock file is damaged: values nested too deeply") from exc
    except _Damaged as exc:
        line, col = _line_of(text, exc.key), 1
        if exc.key == "version":
            line = text.count("\n", 0, max(text.find('"version"'), 0)) + 1
        elif exc.pattern and (found := re.search(exc.pattern, text)):
            line = text.count("\n", 0, found.start()) + 1
            col = found.start() - (text.rfind("\n", 0, found.start()) + 1) + 1
        raise LockFileError(path, f"the lock file is damaged: {exc}", line, col) from exc
    except ValueError as exc:  # e.g. an integer too long to read
        raise LockFileError(path, f"the lock file is damaged: {exc}") from exc


def read_lock(path: Path, *, texts: bool = True) -> Lock:
    """The lock at ``path`` (empty if there is none); an unreadable or damaged lock is a LockFileError.
    ``texts``: as in ``loads``."""
    try:
        data = read_regular(path)
    except FileNotFoundError:
        return Lock()
    except OSError as exc:
        raise LockFileError(path, f"cannot read the lock file: {exc.strerror or exc}") from exc
    if data is None:
        raise LockFileError(path, "the lock is not a regular file (a FIFO or device)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise LockFileError(
            path, f"the lock file is damaged: not UTF-8 (byte 0x{data[exc.start]:02x})", line, col
        ) from exc
    return loads(text, path, texts=texts)


def read_regular(path: Path) -> bytes | None:
    """The bytes of the regular file ``path``, or None if it is something else: opened without
    blocking, so a FIFO (or a file swapped for one) never hangs the build."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return fh.read()


@contextmanager
def atomic_file(path: Path, temp_dir: Path | None = None) -> Iterator[BinaryIO]:
    """A file to write ``path`` through: a temp file (beside it, or in ``temp_dir`` so that nothing
    temporary ever appears in a source folder), fsynced and renamed into place on success, removed
    on failure. Readers never see a partial file; a failure leaves the old one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    folder = path.parent if temp_dir is None else temp_dir
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        # mkstemp creates 0600; give the file the permissions a plain open() would (0666 less umask)
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.replace(tmp, path)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            with atomic_file(path) as beside, open(tmp, "rb") as written:  # another file system
                shutil.copyfileobj(written, beside)
            Path(tmp).unlink()
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_lock(path: Path, lock: Lock, temp_dir: Path | None = None) -> None:
    with atomic_file(path, temp_dir) as fh:
        fh.write(dumps(lock).encode("utf-8"))
