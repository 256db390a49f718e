"""Apply a build to a real Anki collection: read what it holds, plan the difference, apply it in one transaction.

``read_held`` is the only reader, ``plan_sync`` is pure (the build and the held state in, a
``SyncPlan`` out, which ``--dry-run`` prints), and ``apply_plan`` makes exactly the planned
changes inside one SQLite transaction (``col.db.transact``): every Anki operation inside it
only sets a savepoint, so an exception or Ctrl-C anywhere rolls the whole sync back.

Which notes are deckgen's: those with one of deckgen's notetype ids whose GUID this deck's lock
(or this deck's sync record) knows. Nothing else in the collection is read for changing.

Edits made inside Anki: the collection keeps, under the config key ``deckgen:<deck uuid>``, a hash
of every field and the tags sync last wrote to each note (the "record"). A field whose value
differs from the record *and* from the build is an edit made in Anki: the note is a conflict and
is left untouched unless ``--force``. A note with no record (it came by a plain .apkg import)
is compared with the lock instead: a field matching neither the lock of the previous build nor
this build counts as an edit (it may also be a stale import from a build in between; ``--force``
then overwrites it).
"""

from __future__ import annotations

import functools
import html
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deckgen.anki import notetypes
from deckgen.anki.collection import CollectionError, backup_folder, open_collection
from deckgen.anki.notetypes import NoteType
from deckgen.build.cache import CACHE_DIR
from deckgen.build.lock import LOCK_NAME, Lock, _digest
from deckgen.build.pipeline import (
    Compiled,
    compile_deck,
    fingerprint,
    one_at_a_time,
    package_inputs,
    sweep_leftovers,
    write_outputs,
)
from deckgen.errors import DeckgenError, Diagnostic, SourceError
from deckgen.render.markdown import RenderedNote

if TYPE_CHECKING:
    from anki.collection import Collection
    from anki.dbproxy import DBProxy

ORPHAN_TAG = "deckgen::orphan"
ORPHAN_SUBDECK = "Orphans"
# Tags Anki itself gives notes; a note synced for the first time keeps them.
ANKI_TAGS = frozenset({"leech", "marked"})
# A prune touching more than this share of the deck's notes needs --yes, even for archive.
PRUNE_SHARE = 0.10
RECORD_VERSION = 1


class Prune(Enum):
    REPORT = "report"
    ARCHIVE = "archive"
    DELETE = "delete"


# --- what the collection holds ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HeldCard:
    id: int
    ord: int
    deck: str  # home deck (the original deck of a card in a filtered deck)
    suspended: bool
    reps: int


@dataclass(frozen=True, slots=True)
class HeldNote:
    id: int
    guid: str
    notetype_id: int
    fields: Mapping[str, str]
    tags: tuple[str, ...]
    cards: tuple[HeldCard, ...]


@dataclass(frozen=True, slots=True)
class HeldNotetype:
    id: int
    name: str
    fields: tuple[str, ...]
    templates: tuple[tuple[str, str, str], ...]  # name, front, back
    css: str
    mod: int = 0

    @property
    def look(self) -> str:
        return _look(self.name, self.templates, self.css)


def _look(name: str, templates: Sequence[tuple[str, str, str]], css: str) -> str:
    """A hash of everything a notetype shows: its name, card templates and CSS."""
    return _digest(repr((name, tuple(templates), css)))


def notetype_look(nt: NoteType) -> str:
    return _look(nt.name, [(t.name, t.front, t.back) for t in nt.templates], nt.css)


@dataclass(frozen=True, slots=True)
class Record:
    """What sync last wrote to one note: each field's hash, and the tags."""

    fields: Mapping[str, str]
    tags: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Held:
    notetypes: Mapping[int, HeldNotetype]
    notes: Mapping[str, HeldNote]  # this deck's notes, by GUID
    foreign: Mapping[str, str]  # GUIDs of this deck held by a notetype that is not deckgen's -> its name
    records: Mapping[str, Record]
    deck_cards: Mapping[str, int] = field(default_factory=dict)  # cards (of any note) per deck name
    looks: Mapping[int, str] = field(default_factory=dict)  # notetype id -> the look sync last wrote


# --- the plan -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldConflict:
    field: str
    held: str
    built: str


@dataclass(frozen=True, slots=True)
class Conflict:
    """A note edited inside Anki (or otherwise not safe to change): left untouched."""

    id: str
    reason: str
    fields: tuple[FieldConflict, ...] = ()


@dataclass(frozen=True, slots=True)
class NoteUpdate:
    """One built note that the collection holds and that needs some change."""

    rendered: RenderedNote
    guid: str
    held: HeldNote
    fields: tuple[str, ...]  # names of fields whose value changes
    tags: tuple[str, ...] | None  # the new tags, when they change
    notetype_from: int | None  # the held notetype id, when the notetype changes
    move: bool  # some card is not in the note's subdeck
    remove_cards: tuple[HeldCard, ...]  # cards whose template or cloze number is gone
    restore: bool  # an archived orphan back in the sources: unsuspend its cards
    forced: bool = False  # overwrites edits made inside Anki (--force)


@dataclass(frozen=True, slots=True)
class Orphan:
    id: str
    guid: str
    held: HeldNote
    archived: bool  # already archived by an earlier sync


@dataclass(frozen=True, slots=True)
class SyncPlan:
    root: str
    add: tuple[tuple[RenderedNote, str], ...]  # (note, GUID)
    update: tuple[NoteUpdate, ...]
    conflicts: tuple[Conflict, ...]
    orphans: tuple[Orphan, ...]
    prune: Prune
    notetypes: NotetypePlan
    media: tuple[str, ...]  # media names the collection lacks
    deck_notes: int  # this deck's notes in the collection
    records: Mapping[str, Record]  # the records to keep for notes not written by this sync
    empty_decks: tuple[str, ...] = ()  # former subdecks this sync leaves without cards: removed

    @property
    def updated(self) -> tuple[NoteUpdate, ...]:
        return tuple(u for u in self.update if u.fields or u.tags is not None)

    @property
    def moved(self) -> tuple[NoteUpdate, ...]:
        return tuple(u for u in self.update if u.move)

    @property
    def notetype_changed(self) -> tuple[NoteUpdate, ...]:
        return tuple(u for u in self.update if u.notetype_from is not None)

    @property
    def removed_cards(self) -> tuple[tuple[NoteUpdate, HeldCard], ...]:
        return tuple((u, c) for u in self.update for c in u.remove_cards)

    @property
    def pruned(self) -> tuple[Orphan, ...]:
        """The orphans this sync changes (already archived ones stay as they are under archive)."""
        if self.prune is Prune.ARCHIVE:
            return tuple(o for o in self.orphans if not o.archived)
        return self.orphans if self.prune is Prune.DELETE else ()

    @property
    def needs_yes(self) -> str:
        """Why this plan needs --yes (or a confirmation), or ""."""
        if self.prune is Prune.DELETE and self.pruned:
            return f"deletes {len(self.pruned)} note(s) and their review history"
        if self.pruned and len(self.pruned) > PRUNE_SHARE * max(self.deck_notes, 1):
            share = f"{len(self.pruned)} of {self.deck_notes}"
            return f"the prune touches {share} notes of the deck (more than {PRUNE_SHARE:.0%})"
        return ""

    @property
    def changes(self) -> bool:
        return bool(self.add or self.update or self.pruned or self.notetypes.create or self.notetypes.update)

    @property
    def failed(self) -> bool:
        return bool(self.conflicts or self.notetypes.problems)


def _chunks(items: Sequence[str], size: int = 500) -> Iterator[Sequence[str]]:
    """SQLite takes at most 999 bound parameters per statement in older builds."""
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _db(col: Collection) -> DBProxy:
    if col.db is None:
        raise CollectionError(f"{col.path} is closed")
    return col.db


def _marks(chunk: Sequence[str]) -> str:
    return ",".join("?" * len(chunk))


# --- reading --------------------------------------------------------------------------------


def deck_key(compiled: Compiled) -> str:
    """This deck's sync record in a collection is named after the deck's uuid (never its title)."""
    return compiled.deck.config.uuid


def record_key(deck_key: str) -> str:
    return f"deckgen:{deck_key}"


def _held_notetype(nt: Mapping[str, Any]) -> HeldNotetype:
    return HeldNotetype(
        int(nt["id"]),
        str(nt["name"]),
        tuple(str(f["name"]) for f in nt["flds"]),
        tuple((str(t["name"]), str(t["qfmt"]), str(t["afmt"])) for t in nt["tmpls"]),
        str(nt["css"]),
        int(nt.get("mod", 0)),
    )


def _parse_records(raw: object) -> tuple[dict[str, Record], dict[int, str]]:
    """The notes' records and the notetypes' looks of a sync record (empty if missing or unknown)."""
    if not isinstance(raw, dict) or raw.get("version") != RECORD_VERSION:
        return {}, {}
    notes = {
        guid: Record(dict(value.get("f", {})), tuple(value.get("t", ())))
        for guid, value in raw.get("notes", {}).items()
        if isinstance(value, dict)
    }
    return notes, {int(k): str(v) for k, v in raw.get("notetypes", {}).items()}


def read_held(col: Collection, guids: Iterable[str], deck_key: str) -> Held:
    """This deck's notes, cards and notetypes as the collection holds them (reads only)."""
    nt_ids = tuple(nt.id for nt in notetypes.all_notetypes())
    held_nts = {i: _held_notetype(nt) for i in nt_ids if (nt := col.models.get(i)) is not None}  # type: ignore[arg-type]
    records, looks = _parse_records(col.get_config(record_key(deck_key), None))
    wanted = set(guids) | set(records)
    names = {int(d.id): str(d.name) for d in col.decks.all_names_and_ids()}
    notes: dict[str, HeldNote] = {}
    foreign: dict[str, str] = {}
    for chunk in _chunks(sorted(wanted)):
        rows = _db(col).all(f"select id, guid, mid, tags, flds from notes where guid in ({_marks(chunk)})", *chunk)
        cards_of: dict[int, list[HeldCard]] = {}
        if rows:
            nids = ",".join(str(int(r[0])) for r in rows)
            for cid, nid, did, odid, ord_, queue, reps in _db(col).all(
                f"select id, nid, did, odid, ord, queue, reps from cards where nid in ({nids}) order by ord"
            ):
                home = names.get(int(odid or did), "")
                cards_of.setdefault(int(nid), []).append(HeldCard(int(cid), int(ord_), home, queue == -1, int(reps)))
        for nid, guid, mid, tags, flds in rows:
            held_nt = held_nts.get(int(mid))
            if held_nt is None:
                foreign[guid] = str((col.models.get(mid) or {}).get("name", mid))
                continue
            notes[guid] = HeldNote(
                int(nid),
                guid,
                int(mid),
                dict(zip(held_nt.fields, str(flds).split("\x1f"), strict=False)),
                tuple(str(tags).split()),
                tuple(cards_of.get(int(nid), ())),
            )
    deck_cards: dict[str, int] = {}
    for did, count in _db(col).all("select case when odid then odid else did end, count() from cards group by 1"):
        deck_cards[names.get(int(did), "")] = int(count)
    return Held(held_nts, notes, foreign, records, deck_cards, looks)


# --- planning (pure) ------------------------------------------------------------------------


def _norm(value: str) -> str:
    return unicodedata.normalize("NFC", value)


def _hashes(names: Sequence[str], values: Sequence[str]) -> dict[str, str]:
    """A record's field hashes: empty fields are left out, as in the lock."""
    return {n: _digest(_norm(v)) for n, v in zip(names, values, strict=False) if v}


def _excerpt(value: str, width: int = 60) -> str:
    text = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", value)).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _schema_problem(held: HeldNotetype, nt: NoteType) -> str:
    if (held.fields, tuple(t[0] for t in held.templates)) == nt.schema:
        return ""
    added = [f for f in held.fields if f not in nt.fields]
    missing = [f for f in nt.fields if f not in held.fields]
    what = []
    if added:
        what.append("added field(s) " + ", ".join(repr(f) for f in added))
    if missing:
        what.append("removed or renamed field(s) " + ", ".join(repr(f) for f in missing))
    if not what:
        what.append("its fields or card types were reordered, added or removed")
    return (
        f"notetype {nt.name!r} was changed inside Anki ({'; '.join(what)}): deckgen neither updates it nor its "
        f"notes, and never copies it. In Anki: Tools → Manage Note Types → {nt.name} → Fields/Cards, undo the "
        "change (copy what you need out of an added field first), then run deckgen sync again"
    )


@dataclass(frozen=True, slots=True)
class NotetypePlan:
    create: tuple[NoteType, ...] = ()
    update: tuple[NoteType, ...] = ()  # templates and CSS rewritten in place
    kept: tuple[NoteType, ...] = ()  # the look was changed inside Anki and deckgen's has not changed since
    problems: Mapping[int, str] = field(default_factory=dict)  # schema changed inside Anki
    looks: Mapping[int, str] = field(default_factory=dict)  # the looks to record after this sync


def _look_changed_inside_anki(have: HeldNotetype, nt: NoteType, recorded: str | None, mod: int) -> bool:
    """Whether ``have``'s differing look is the user's to keep: changed inside Anki since sync (or the
    .apkg) wrote it, and deckgen's own look unchanged since then. Without a record, Anki's importer
    rule decides: only a notetype newer than the collection's replaces it."""
    if recorded is None:
        return mod <= have.mod
    return have.look != recorded and notetype_look(nt) == recorded


def _notetype_plan(held: Held, mods: Mapping[int, int]) -> NotetypePlan:
    create, update, kept, problems, looks = [], [], [], {}, dict(held.looks)
    for nt in notetypes.all_notetypes():
        have = held.notetypes.get(nt.id)
        if have is None:
            create.append(nt)
        elif problem := _schema_problem(have, nt):
            problems[nt.id] = problem
            continue
        elif have.look == notetype_look(nt):
            pass
        elif _look_changed_inside_anki(have, nt, held.looks.get(nt.id), mods.get(nt.id, 0)):
            kept.append(nt)
            continue
        else:
            update.append(nt)
        looks[nt.id] = notetype_look(nt)
    return NotetypePlan(tuple(create), tuple(update), tuple(kept), problems, looks)


def _lock_hashes(lock: Lock) -> dict[str, Mapping[str, str]]:
    return {entry.guid: entry.parts for entry in lock.notes.values()}


def _baseline(
    guid: str, name: str, records: Mapping[str, Record], previous: Sequence[Mapping[str, Mapping[str, str]]]
) -> set[str] | None:
    """Hashes a field's value may have if deckgen wrote it last; None when there is nothing to compare."""
    record = records.get(guid)
    if record is not None:
        return {record.fields.get(name, _digest(""))}
    found: set[str] = set()
    for hashes in previous:
        parts = hashes.get(guid)
        if parts is not None:
            found.add(parts.get(name, _digest("")))  # the lock leaves empty fields out
    return found or None


def _edits(
    guid: str,
    held: HeldNote,
    built: Mapping[str, str],
    records: Mapping[str, Record],
    previous: Sequence[Mapping[str, Mapping[str, str]]],
    same_notetype: bool,
) -> tuple[FieldConflict, ...]:
    """Fields edited inside Anki since deckgen last wrote them (and that the build would overwrite)."""
    out = []
    for name, value in held.fields.items():
        value = _norm(value)
        expected = _baseline(guid, name, records, previous)
        if expected is None:
            expected = {_digest("")}  # unknown note: anything but an empty field is someone's edit
        if _digest(value) in expected:
            continue
        new = _norm(built.get(name, ""))
        if same_notetype and value == new:
            continue  # edited to exactly what the build now has
        out.append(FieldConflict(name, _excerpt(value), _excerpt(new)))
    return tuple(out)


def _tags(held: HeldNote, built: Sequence[str], record: Record | None) -> tuple[str, ...]:
    """The build's tags plus those added inside Anki (not written by deckgen)."""
    ours = {t.casefold() for t in (*built, ORPHAN_TAG)}
    if record is not None:
        written = {t.casefold() for t in record.tags} | {ORPHAN_TAG}
        kept = [t for t in held.tags if t.casefold() not in written and t.casefold() not in ours]
    else:
        kept = [t for t in held.tags if t.casefold() in ANKI_TAGS and t.casefold() not in ours]
    return tuple(sorted([*built, *kept], key=str.casefold))


def _note_update(
    rn: RenderedNote,
    guid: str,
    held: HeldNote,
    record: Record | None,
    force: bool,
    conflict: bool,
) -> NoteUpdate | None:
    built = dict(zip(rn.notetype.fields, rn.fields, strict=True))
    same_notetype = held.notetype_id == rn.notetype.id
    changed = tuple(
        n for n in rn.notetype.fields if not same_notetype or _norm(held.fields.get(n, "")) != _norm(built[n])
    )
    tags = _tags(held, rn.tags, record)
    new_tags = None if sorted(tags, key=str.casefold) == sorted(held.tags, key=str.casefold) else tags
    move = any(c.deck != rn.deck for c in held.cards)
    wanted = set(rn.card_ords)
    remove = tuple(c for c in held.cards if c.ord not in wanted)
    restore = ORPHAN_TAG in {t.casefold() for t in held.tags}
    if not (changed or new_tags is not None or move or remove or restore or not same_notetype):
        return None
    notetype_from = None if same_notetype else held.notetype_id
    return NoteUpdate(rn, guid, held, changed, new_tags, notetype_from, move, remove, restore, force and conflict)


def _plan_note(
    rn: RenderedNote,
    guid: str,
    held: Held,
    previous: Sequence[Mapping[str, Mapping[str, str]]],
    nt_problems: Mapping[int, str],
    force: bool,
) -> NoteUpdate | Conflict | Record | None:
    """What one built note needs: an update, nothing (its record), or it is a conflict; None: add it."""
    have = held.notes.get(guid)
    if guid in held.foreign:
        return Conflict(
            rn.note.id,
            f"the collection holds this note with notetype {held.foreign[guid]!r} (changed inside Anki); "
            f"change it back to {rn.notetype.name!r} in Anki's browser (Notes → Change Note Type) or delete it",
        )
    if nt_problems.get(rn.notetype.id) or (have is not None and nt_problems.get(have.notetype_id)):
        return Conflict(rn.note.id, "its notetype was changed inside Anki (see above)")
    if have is None:
        return None
    built = dict(zip(rn.notetype.fields, rn.fields, strict=True))
    edits = _edits(guid, have, built, held.records, previous, have.notetype_id == rn.notetype.id)
    if edits and not force:
        return Conflict(rn.note.id, "edited inside Anki", edits)
    update = _note_update(rn, guid, have, held.records.get(guid), force, bool(edits))
    # a note in step with the build: (re)record it, so that later edits inside Anki are told exactly
    return update or Record(_hashes(rn.notetype.fields, rn.fields), rn.tags)


def _orphans(held: Held, built: set[str], new_lock: Lock) -> list[Orphan]:
    """This deck's notes in the collection that the build no longer has, in id order."""
    lock_ids = {e.guid: k for k, e in new_lock.notes.items()}
    found = []
    for guid, have in held.notes.items():
        if guid not in built:
            archived = ORPHAN_TAG in {t.casefold() for t in have.tags} and all(c.suspended for c in have.cards)
            found.append(Orphan(lock_ids.get(guid, have.fields.get("Id", guid)), guid, have, archived))
    return sorted(found, key=lambda o: o.id)


def plan_sync(
    root: str,
    notes: Sequence[tuple[RenderedNote, str]],
    lock: Lock,
    new_lock: Lock,
    held: Held,
    media: Iterable[str],
    *,
    prune: Prune = Prune.REPORT,
    force: bool = False,
    notetype_mods: Mapping[int, int] | None = None,
) -> SyncPlan:
    """The difference between the build (``notes`` with their GUIDs) and what the collection holds.

    ``notetype_mods`` are the lock's times (s) at which deckgen's notetypes last changed their look."""
    nt_plan = _notetype_plan(held, notetype_mods or {})
    nt_problems = nt_plan.problems
    previous = (_lock_hashes(lock), _lock_hashes(new_lock))
    adds: list[tuple[RenderedNote, str]] = []
    updates: list[NoteUpdate] = []
    conflicts: list[Conflict] = []
    in_step: dict[str, Record] = {}
    for rn, guid in notes:
        planned = _plan_note(rn, guid, held, previous, nt_problems, force)
        if planned is None:
            adds.append((rn, guid))
        elif isinstance(planned, NoteUpdate):
            updates.append(planned)
        elif isinstance(planned, Conflict):
            conflicts.append(planned)
        else:
            in_step[guid] = planned
    orphans = _orphans(held, {g for _, g in notes}, new_lock)
    written = {u.guid for u in updates} | {g for _, g in adds}
    if prune is Prune.DELETE:
        written |= {o.guid for o in orphans}
    return SyncPlan(
        root=root,
        add=tuple(adds),
        update=tuple(updates),
        conflicts=tuple(conflicts),
        orphans=tuple(orphans),
        prune=prune,
        notetypes=nt_plan,
        media=tuple(sorted(media)),
        deck_notes=len(held.notes),
        records={g: r for g, r in held.records.items() if g not in written} | in_step,
        empty_decks=_emptied_decks(root, held, notes, updates, orphans, prune),
    )


def _emptied_decks(
    root: str,
    held: Held,
    notes: Sequence[tuple[RenderedNote, str]],
    updates: Sequence[NoteUpdate],
    orphans: Sequence[Orphan],
    prune: Prune,
) -> tuple[str, ...]:
    """Subdecks of the root that the build no longer names and that this sync leaves with no card at all
    (e.g. the old name of a renamed subdeck)."""
    kept = {rn.deck for rn, _ in notes} | {f"{root}::{ORPHAN_SUBDECK}"}
    kept |= {"::".join(name.split("::")[:i]) for name in kept for i in range(1, name.count("::") + 1)}
    leaving: dict[str, int] = {}
    for u in updates:
        for card in u.held.cards:
            if card in u.remove_cards or (u.move and card.deck != u.rendered.deck):
                leaving[card.deck] = leaving.get(card.deck, 0) + 1
    if prune is not Prune.REPORT:
        for o in orphans:
            for card in o.held.cards:
                leaving[card.deck] = leaving.get(card.deck, 0) + 1
    nested = {name.rpartition("::")[0] for name in held.deck_cards}
    return tuple(
        sorted(
            name
            for name, count in held.deck_cards.items()
            if name.startswith(f"{root}::")
            and name not in kept
            and name not in nested
            and leaving.get(name, 0) == count
        )
    )


# --- applying -------------------------------------------------------------------------------


def _notetype_dict(col: Collection, nt: NoteType, mod: int) -> dict[str, Any]:
    """Anki's own notetype dict with deckgen's fixed id, fields, templates and CSS (as the .apkg has them)."""
    models = col.models
    d = models.new(nt.name)
    for name in nt.fields:
        models.add_field(d, models.new_field(name))
    for t in nt.templates:
        template = models.new_template(t.name)
        template["qfmt"], template["afmt"] = t.front, t.back
        models.add_template(d, template)
    d.update(id=nt.id, css=nt.css, type=1 if nt.is_cloze else 0, mod=mod, usn=-1, sortf=0)
    return d


def _write_notetypes(col: Collection, plan: SyncPlan, mods: Mapping[int, int]) -> None:
    for nt in plan.notetypes.create:
        col.models.update(_notetype_dict(col, nt, mods.get(nt.id, 0)), preserve_usn=True)  # keeps the fixed id
    for nt in plan.notetypes.update:
        held = col.models.get(nt.id)  # type: ignore[arg-type]
        if held is None:
            raise DeckgenError(f"internal error: notetype {nt.name} vanished during the sync; nothing was changed")
        d = dict(held)
        d["name"], d["css"] = nt.name, nt.css
        d["tmpls"] = [dict(t, qfmt=src.front, afmt=src.back) for t, src in zip(d["tmpls"], nt.templates, strict=True)]
        col.models.update_dict(d)


def _change_notetypes(col: Collection, plan: SyncPlan) -> None:
    """Anki's own change-notetype operation: cards keep their ordinal (Forward ↔ c1), so reviews survive."""
    groups: dict[tuple[int, int], list[int]] = {}
    for u in plan.notetype_changed:
        groups.setdefault((u.held.notetype_id, u.rendered.notetype.id), []).append(u.held.id)
    for (old, new), nids in sorted(groups.items()):
        info = col.models.change_notetype_info(old_notetype_id=old, new_notetype_id=new)  # type: ignore[arg-type]
        request = info.input
        request.note_ids.extend(nids)
        col.models.change_notetype_of_notes(request)


def _deck_ids(col: Collection, names: Iterable[str]) -> dict[str, int]:
    return {name: int(col.decks.id(name, create=True) or 0) for name in sorted(set(names))}


def _update_notes(col: Collection, plan: SyncPlan) -> None:
    notes = []
    for u in plan.update:
        if not (u.fields or u.tags is not None or u.notetype_from is not None):
            continue
        note = col.get_note(u.held.id)  # type: ignore[arg-type]
        for name, value in zip(u.rendered.notetype.fields, u.rendered.fields, strict=True):
            note[name] = value
        if u.tags is not None:
            note.tags = list(u.tags)
        notes.append(note)
    if notes:
        col.update_notes(notes)


def _add_notes(col: Collection, plan: SyncPlan) -> None:
    from anki.collection import AddNoteRequest

    decks = _deck_ids(col, (rn.deck for rn, _ in plan.add))
    requests = []
    for rn, guid in plan.add:
        note = col.new_note(col.models.get(rn.notetype.id))  # type: ignore[arg-type]
        note.guid = guid
        for name, value in zip(rn.notetype.fields, rn.fields, strict=True):
            note[name] = value
        note.tags = list(rn.tags)
        requests.append(AddNoteRequest(note, decks[rn.deck]))  # type: ignore[arg-type]
    if requests:
        col.add_notes(requests)


def _remove_cards(col: Collection, plan: SyncPlan) -> None:
    planned = {c.id for _, c in plan.removed_cards}
    if not planned:
        return
    # cloze -> basic already removed the cards above the last template
    existing = _cards_by_guid(col, {u.guid for u, _ in plan.removed_cards})
    cids = sorted(card.id for cards in existing.values() for card in cards if card.id in planned)
    if cids:
        col.remove_cards_and_orphaned_notes(cids)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class _Card:
    id: int
    ord: int
    home: int  # the card's own deck (its original deck while it sits in a filtered deck)
    filtered: bool
    suspended: bool


def _cards_by_guid(col: Collection, guids: Iterable[str]) -> dict[str, list[_Card]]:
    """The cards of each note, as the collection holds them now (during the transaction)."""
    wanted = sorted(set(guids))
    out: dict[str, list[_Card]] = {g: [] for g in wanted}
    for chunk in _chunks(wanted):
        for guid, cid, ord_, did, odid, queue in _db(col).all(
            f"select n.guid, c.id, c.ord, c.did, c.odid, c.queue from cards c join notes n on c.nid = n.id "
            f"where n.guid in ({_marks(chunk)})",
            *chunk,
        ):
            out[guid].append(_Card(int(cid), int(ord_), int(odid or did), bool(odid), queue == -1))
    return out


def _move_cards(col: Collection, plan: SyncPlan) -> None:
    """Every card of every written note into its note's subdeck (new cards Anki generated included).

    A card in a filtered deck (custom study) stays there: its home deck changes, where it returns.
    """
    targets = {u.guid: u.rendered.deck for u in plan.update} | {g: rn.deck for rn, g in plan.add}
    decks = _deck_ids(col, targets.values())
    moves: dict[int, list[int]] = {}
    rehome = []
    for guid, cards in _cards_by_guid(col, targets).items():
        did = decks[targets[guid]]
        for card in cards:
            if card.home == did:
                continue
            if card.filtered:
                held = col.get_card(card.id)  # type: ignore[arg-type]
                held.odid = did  # type: ignore[assignment]
                rehome.append(held)
            else:
                moves.setdefault(did, []).append(card.id)
    for did, cids in sorted(moves.items()):
        col.set_deck(cids, did)  # type: ignore[arg-type]
    if rehome:
        col.update_cards(rehome)


def _restore(col: Collection, plan: SyncPlan) -> None:
    guids = [u.guid for u in plan.update if u.restore]
    cids = [card.id for cards in _cards_by_guid(col, guids).values() for card in cards if card.suspended]
    if cids:
        col.sched.unsuspend_cards(cids)  # type: ignore[arg-type]


def _prune(col: Collection, plan: SyncPlan) -> None:
    nids = [o.held.id for o in plan.pruned]
    if not nids:
        return
    if plan.prune is Prune.DELETE:
        col.remove_notes(nids)  # type: ignore[arg-type]
        return
    cids = [c.id for o in plan.pruned for c in o.held.cards]
    col.sched.suspend_cards(cids)  # type: ignore[arg-type]
    col.tags.bulk_add(nids, ORPHAN_TAG)  # type: ignore[arg-type]
    col.set_deck(cids, _deck_ids(col, [f"{plan.root}::{ORPHAN_SUBDECK}"])[f"{plan.root}::{ORPHAN_SUBDECK}"])  # type: ignore[arg-type]


def _remove_empty_decks(col: Collection, plan: SyncPlan) -> None:
    """Remove the planned former subdecks, each only if it really holds no card and no child deck."""
    for name in plan.empty_decks:
        did = col.decks.id_for_name(name)
        if did is None or col.decks.children(did):
            continue
        if _db(col).scalar("select count() from cards where did = ? or odid = ?", did, did) == 0:
            col.decks.remove([did])


def _verify(col: Collection, plan: SyncPlan) -> None:
    """Every written note has exactly the build's cards in its subdeck; otherwise roll everything back."""
    targets = {u.guid: u.rendered for u in plan.update} | {g: rn for rn, g in plan.add}
    decks = _deck_ids(col, (rn.deck for rn in targets.values()))
    for guid, cards in _cards_by_guid(col, targets).items():
        rn = targets[guid]
        ords = sorted(card.ord for card in cards)
        if ords != sorted(rn.card_ords) or any(card.home != decks[rn.deck] for card in cards):
            raise DeckgenError(
                f"internal error: after sync, note {rn.note.id} has cards {ords} "
                f"(expected {sorted(rn.card_ords)} in {rn.deck}); nothing was changed"
            )


def _write_records(col: Collection, plan: SyncPlan, deck_key: str) -> None:
    """Remember what this sync wrote to each note, to tell edits made inside Anki from deckgen's own."""
    records = dict(plan.records)
    written = {u.guid for u in plan.update} | {g for _, g in plan.add}
    fields_of = {nt.id: nt.fields for nt in notetypes.all_notetypes()}
    built_tags = {u.guid: u.rendered.tags for u in plan.update} | {g: rn.tags for rn, g in plan.add}
    for chunk in _chunks(sorted(written)):
        # hashes of the values as Anki stored them (it may normalise text)
        sql = f"select guid, mid, flds from notes where guid in ({_marks(chunk)})"
        for guid, mid, flds in _db(col).all(sql, *chunk):
            records[guid] = Record(_hashes(fields_of[int(mid)], str(flds).split("\x1f")), tuple(built_tags[guid]))
    if plan.prune is Prune.DELETE:
        for o in plan.pruned:
            records.pop(o.guid, None)
    payload = {
        "version": RECORD_VERSION,
        "notetypes": {str(k): v for k, v in sorted(plan.notetypes.looks.items())},
        "notes": {g: {"f": dict(sorted(r.fields.items())), "t": list(r.tags)} for g, r in sorted(records.items())},
    }
    col.set_config(record_key(deck_key), payload)


# The steps of a sync, in order; each runs inside the one transaction (tests inject a failure here).
Step = Callable[[Any, SyncPlan], None]


def _steps(mods: Mapping[int, int], deck_key: str) -> tuple[Step, ...]:
    return (
        lambda col, plan: _write_notetypes(col, plan, mods),
        _change_notetypes,
        _update_notes,
        _add_notes,
        _remove_cards,
        _move_cards,
        _restore,
        _prune,
        _remove_empty_decks,
        _verify,
        lambda col, plan: _write_records(col, plan, deck_key),
    )


def apply_plan(
    col: Collection, plan: SyncPlan, media: Mapping[str, bytes], mods: Mapping[int, int], deck_key: str
) -> None:
    """Make the planned changes in one transaction: all of them, or (on any exception) none."""
    for name in plan.media:
        col.media.write_data(name, media[name])  # content-named files: an unused one is harmless

    def run() -> None:
        for step in _steps(mods, deck_key):
            step(col, plan)

    _db(col).transact(run)


# --- the whole sync --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SyncOptions:
    dry_run: bool = False
    prune: Prune = Prune.REPORT
    force: bool = False
    yes: bool = False
    backup: bool = True


@dataclass(frozen=True, slots=True)
class SyncResult:
    plan: SyncPlan
    applied: bool
    backup: Path | None = None  # the folder Anki's backup was written to
    refused: str = ""  # why nothing was applied (a prune that needed --yes)


def sync_collection(
    path: Path,
    compiled: Compiled,
    options: SyncOptions,
    confirm: Callable[[SyncPlan], bool] = lambda plan: False,
) -> SyncResult:
    """Plan and (unless a dry run) apply the compiled deck to the collection at ``path``.

    ``confirm`` is asked when the plan needs it (a delete, or a prune of over 10 % of the deck)
    and ``options.yes`` is not set.
    """
    notes = [(rn, compiled.new_lock.notes[rn.note.id].guid) for rn in compiled.notes]
    _, _, nt_mods = package_inputs(compiled)
    mods = {nt_id: mod for nt_id, (_, mod) in nt_mods.items()}
    key, media = deck_key(compiled), compiled.media
    col = open_collection(path)
    try:
        held = read_held(col, [g for _, g in notes] + [e.guid for e in compiled.new_lock.notes.values()], key)
        missing = [name for name in media if not col.media.have(name)]
        plan = plan_sync(
            compiled.deck.name,
            notes,
            compiled.lock,
            compiled.new_lock,
            held,
            missing,
            prune=options.prune,
            force=options.force,
            notetype_mods=mods,
        )
        if options.dry_run:
            return SyncResult(plan, applied=False)
        if plan.needs_yes and not options.yes and not confirm(plan):
            return SyncResult(plan, applied=False, refused=plan.needs_yes)
        if not plan.changes and (plan.records, plan.notetypes.looks) == (held.records, held.looks):
            return SyncResult(plan, applied=False)
        backed_up = None
        if options.backup:
            folder = backup_folder(path)
            folder.mkdir(parents=True, exist_ok=True)
            from anki.errors import BackendError

            try:
                col.create_backup(backup_folder=str(folder), force=True, wait_for_completion=True)
                backed_up = folder
            except (BackendError, OSError) as exc:
                raise CollectionError(f"cannot back up {path} into {folder} ({exc}); nothing was changed") from exc
        apply_plan(col, plan, media, mods, key)
        return SyncResult(plan, applied=True, backup=backed_up)
    finally:
        col.close()


@dataclass(frozen=True, slots=True)
class DeckSync:
    """A build applied (or planned, for a dry run) to a collection."""

    compiled: Compiled
    output: Path  # the .apkg, written as by build once the sync succeeded
    collection: Path
    result: SyncResult
    wrote: bool  # the package and lock were written

    @property
    def warnings(self) -> tuple[Diagnostic, ...]:
        """The build's warnings, less the import hazards this sync applied."""
        return tuple(w for w in self.compiled.warnings if w.rule not in APPLIED_HAZARDS)


# Import hazards (see build/hazards.py) that build warns about and sync applies: not worth a warning here.
APPLIED_HAZARDS = frozenset({"deck-moved", "cards-removed"})


def sync_deck(
    source: Path,
    out_dir: Path,
    collection: Path,
    *,
    now: int,
    options: SyncOptions,
    confirm: Callable[[SyncPlan], bool] = lambda plan: False,
    wall_clock: int = 0,
    on_wait: Callable[[Path], None] | None = None,
) -> DeckSync:
    """Build ``source`` (refusing on errors, writing nothing but the render cache), apply it to
    ``collection``, then write the package and lock as ``build`` does. A refused or failed sync
    writes nothing else anywhere. Like a build, a sync that writes holds the source and output
    folders (``exclusive``) from before it reads the sources until it has written."""
    run = functools.partial(_sync_deck, source, out_dir, collection, now, options, confirm, wall_clock)
    return one_at_a_time(source, out_dir, run, dry_run=options.dry_run, on_wait=on_wait)


def _sync_deck(
    source: Path,
    out_dir: Path,
    collection: Path,
    now: int,
    options: SyncOptions,
    confirm: Callable[[SyncPlan], bool],
    wall_clock: int,
) -> DeckSync:
    if not options.dry_run:
        sweep_leftovers(out_dir, source)
    lock_seen = fingerprint(source / LOCK_NAME)
    # Notetype changes are errors for build (the importer cannot apply them); sync converts them.
    compiled = compile_deck(
        source, now, cache_dir=out_dir / CACHE_DIR, accept_notetype_changes=True, wall_clock=wall_clock
    )
    if compiled.errors:
        raise SourceError(compiled.errors)
    result = sync_collection(collection, compiled, options, confirm)
    output = out_dir / compiled.deck.config.output
    wrote = not options.dry_run and not result.refused
    if wrote:
        if fingerprint(source / LOCK_NAME) != lock_seen:
            raise DeckgenError(
                f"{collection} is synced, but {source / LOCK_NAME} changed during the sync (another program "
                "wrote it): the package and lock were not written; run deckgen sync again"
            )
        write_outputs(compiled, output, source / LOCK_NAME)
    return DeckSync(compiled, output, collection, result, wrote)
