"""The lock file ``source/deckgen.lock``: each note's content hashes and when its content last changed.

Anki updates an existing note on import only when the incoming ``mod`` is strictly newer than the
one it holds. Stamping every note with the build time would rewrite every note on every import;
so a note's ``mod`` is the time its content last changed, kept here, and a changed note always
gets a time strictly greater than its previous one, even within the same second.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import BinaryIO

from deckgen.anki.notetypes import NoteType
from deckgen.errors import DeckgenError
from deckgen.render.markdown import RenderedNote

LOCK_NAME = "deckgen.lock"
LOCK_VERSION = 1


@dataclass(frozen=True, slots=True)
class NoteEntry:
    guid: str
    mod: int
    # Short hash of each field, plus the pseudo-fields "tags", "deck" and "notetype".
    parts: Mapping[str, str]
    removed: bool = False


@dataclass(frozen=True, slots=True)
class NotetypeEntry:
    hash: str
    mod: int


@dataclass(frozen=True, slots=True)
class Lock:
    notes: Mapping[str, NoteEntry] = field(default_factory=dict)
    notetypes: Mapping[str, NotetypeEntry] = field(default_factory=dict)


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

    @property
    def any(self) -> bool:
        return bool(self.added or self.changed or self.removed or self.renamed)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def note_parts(rn: RenderedNote) -> dict[str, str]:
    parts = {name: _digest(value) for name, value in zip(rn.notetype.fields, rn.fields, strict=True) if value}
    parts["tags"] = _digest(" ".join(rn.tags))
    parts["deck"] = _digest(rn.deck)
    parts["notetype"] = str(rn.notetype.id)
    return parts


def _next_mod(old: int | None, now: int) -> int:
    return now if old is None else max(now, old + 1)


def update_lock(
    lock: Lock, notes: Iterable[RenderedNote], notetypes: Iterable[NoteType], now: int
) -> tuple[Lock, LockDiff]:
    """The lock after this build, and the diff from the old one. ``now`` is the build time (s)."""
    old = dict(lock.notes)
    new: dict[str, NoteEntry] = {}
    added, changed, renamed = [], [], []
    unchanged = 0
    for rn in notes:
        note = rn.note
        parts = note_parts(rn)
        previous_id = note.id if note.id in old else next((a for a in reversed(note.aliases) if a in old), None)
        prev = old.get(previous_id) if previous_id else None
        if previous_id and previous_id != note.id:
            renamed.append(Change(note.id, old_id=previous_id))
        if prev is None:
            added.append(note.id)
            new[note.id] = NoteEntry(rn.guid, now, parts)
        elif prev.parts != parts or prev.removed or prev.guid != rn.guid:
            diff_fields = tuple(
                sorted(k for k in parts.keys() | prev.parts.keys() if parts.get(k) != prev.parts.get(k))
            )
            changed.append(Change(note.id, diff_fields or ("restored",)))
            new[note.id] = NoteEntry(rn.guid, _next_mod(prev.mod, now), parts)
        else:
            unchanged += previous_id == note.id
            new[note.id] = prev
    consumed = set(new) | {c.old_id for c in renamed}
    removed = sorted(k for k, v in old.items() if k not in consumed and not v.removed)
    for key, entry in old.items():
        if key not in consumed:
            new[key] = replace(entry, removed=True)
    nt_entries = {}
    for nt in notetypes:
        prev_nt = lock.notetypes.get(nt.name)
        if prev_nt is not None and prev_nt.hash == nt.style_hash:
            nt_entries[nt.name] = prev_nt
        else:
            nt_entries[nt.name] = NotetypeEntry(nt.style_hash, _next_mod(prev_nt.mod if prev_nt else None, now))
    orphans = tuple(sorted(k for k, v in new.items() if v.removed))
    diff = LockDiff(
        tuple(sorted(added)),
        tuple(sorted(changed, key=lambda c: c.id)),
        tuple(removed),
        tuple(sorted(renamed, key=lambda c: c.id)),
        unchanged,
        orphans,
    )
    return Lock(dict(sorted(new.items())), dict(sorted(nt_entries.items()))), diff


# --- reading and writing ----------------------------------------------------------------------


class LockFileError(DeckgenError):
    pass


def dumps(lock: Lock) -> str:
    """One line per note so that version-control diffs show exactly which notes changed."""
    lines = ["{", f'  "version": {LOCK_VERSION},', '  "notetypes": {']
    nts = [
        f"    {json.dumps(k)}: {json.dumps({'hash': v.hash, 'mod': v.mod}, sort_keys=True)}"
        for k, v in lock.notetypes.items()
    ]
    lines.append(",\n".join(nts))
    lines += ["  },", '  "notes": {']
    notes = []
    for key, entry in lock.notes.items():
        value: dict[str, object] = {"guid": entry.guid, "mod": entry.mod, "parts": dict(sorted(entry.parts.items()))}
        if entry.removed:
            value["removed"] = True
        notes.append(f"    {json.dumps(key)}: {json.dumps(value, sort_keys=True, ensure_ascii=False)}")
    lines.append(",\n".join(notes))
    lines += ["  }", "}", ""]
    return "\n".join(line for line in lines if line)


def loads(text: str, path: Path) -> Lock:
    try:
        data = json.loads(text)
        if data.get("version") != LOCK_VERSION:
            raise LockFileError(f"{path}: unsupported lock version {data.get('version')!r}")
        notes = {
            k: NoteEntry(v["guid"], int(v["mod"]), dict(v["parts"]), bool(v.get("removed", False)))
            for k, v in data["notes"].items()
        }
        nts = {k: NotetypeEntry(v["hash"], int(v["mod"])) for k, v in data["notetypes"].items()}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise LockFileError(f"{path}: the lock file is damaged ({exc}); restore it from version control") from exc
    return Lock(notes, nts)


def read_lock(path: Path) -> Lock:
    if not path.exists():
        return Lock()
    return loads(path.read_text(encoding="utf-8"), path)


@contextmanager
def atomic_file(path: Path) -> Iterator[BinaryIO]:
    """A file to write ``path`` through: a temp file beside it, fsynced and renamed into place on
    success, removed on failure. Readers never see a partial file; a failure leaves the old one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp creates 0600; give the file the permissions a plain open() would (0666 less umask)
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_lock(path: Path, lock: Lock) -> None:
    with atomic_file(path) as fh:
        fh.write(dumps(lock).encode("utf-8"))
