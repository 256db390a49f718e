"""Write a deterministic ``.apkg`` with genanki: stable ids, per-note ``mod`` times, atomic rename.

genanki (0.13.1, unmaintained) is used only here. It stamps every note with the package timestamp
and derives note and card ids from the clock; deckgen needs each note's own ``mod`` (from the lock)
and ids that never change, so notes and cards go through ``_LockedNote.write_to_db`` below.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import genanki

from deckgen.lock import atomic_write
from deckgen.notetypes import ROOT_DECK_ID, NoteType
from deckgen.render import RenderedNote

ZIP_DATE = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True, slots=True)
class PackagedNote:
    rendered: RenderedNote
    mod: int
    due: int


@dataclass(frozen=True, slots=True)
class PackageDeck:
    name: str
    description: str = ""


def deck_id(name: str, root: str) -> int:
    """The root deck has a fixed id; subdecks get one derived from their name, stable across builds."""
    if name == root:
        return ROOT_DECK_ID
    return (1 << 30) + int(hashlib.sha256(f"deckgen-deck:{name}".encode()).hexdigest()[:12], 16) % (1 << 40)


def _stable_id(*parts: object) -> int:
    """A positive id below 2**53 (safe in JavaScript), stable for the same parts."""
    digest = hashlib.sha256(repr(parts).encode()).hexdigest()
    return 10**12 + int(digest[:13], 16) % (2**52 - 10**12)


class _LockedNote(genanki.Note):  # type: ignore[misc]
    """A genanki note written with its own id, ``mod`` and card ids instead of clock-derived ones."""

    def __init__(self, packaged: PackagedNote, model: genanki.Model) -> None:
        rn = packaged.rendered
        super().__init__(model=model, fields=list(rn.fields), tags=list(rn.tags), guid=rn.guid, due=packaged.due)
        self._packaged = packaged

    def write_to_db(self, cursor: sqlite3.Cursor, timestamp: float, deck_id: int, id_gen: Any) -> None:
        rn, mod = self._packaged.rendered, self._packaged.mod
        note_id = _stable_id("note", rn.guid)
        cursor.execute(
            "INSERT INTO notes VALUES(?,?,?,?,?,?,?,?,?,?,?);",
            (
                note_id,
                rn.guid,
                rn.notetype.id,
                mod,
                -1,
                self._format_tags(),
                self._format_fields(),
                self.sort_field,
                0,
                0,
                "",
            ),
        )
        for ord_ in rn.card_ords:
            card_type = 0
            cursor.execute(
                "INSERT INTO cards VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?);",
                (
                    _stable_id("card", rn.guid, ord_),
                    note_id,
                    deck_id,
                    ord_,
                    mod,
                    -1,
                    card_type,
                    0,
                    self._packaged.due,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    "",
                ),
            )


def _model(nt: NoteType) -> genanki.Model:
    return genanki.Model(
        nt.id,
        nt.name,
        fields=[{"name": f} for f in nt.fields],
        templates=[{"name": t.name, "qfmt": t.front, "afmt": t.back} for t in nt.templates],
        css=nt.css,
        model_type=genanki.Model.CLOZE if nt.is_cloze else genanki.Model.FRONT_BACK,
    )


def build_collection(
    db_path: Path,
    root: str,
    decks: Sequence[PackageDeck],
    notes: Sequence[PackagedNote],
    notetype_mods: Mapping[int, tuple[NoteType, int]],
) -> None:
    """Write the Anki collection database (schema 11, as genanki makes it) to ``db_path``."""
    models = {nt_id: _model(nt) for nt_id, (nt, _) in notetype_mods.items()}
    gdecks = {d.name: genanki.Deck(deck_id(d.name, root), d.name, d.description) for d in decks}
    for d in gdecks.values():
        for m in models.values():
            d.add_model(m)
    for pn in notes:
        gdecks[pn.rendered.deck].add_note(_LockedNote(pn, models[pn.rendered.notetype.id]))
    timestamp = max([pn.mod for pn in notes] + [mod for _, mod in notetype_mods.values()] + [0])
    conn = sqlite3.connect(db_path)
    try:
        cursor = conn.cursor()
        genanki.Package(list(gdecks.values())).write_to_db(cursor, timestamp, iter(()))
        # genanki gives every notetype the package time; ours carry the time their look last changed,
        # so re-importing an unchanged deck leaves users' notetypes alone.
        (models_json,) = cursor.execute("SELECT models FROM col").fetchone()
        models_data = json.loads(models_json)
        for nt_id, (_, mod) in notetype_mods.items():
            models_data[str(nt_id)]["mod"] = mod
            models_data[str(nt_id)]["did"] = ROOT_DECK_ID
        cursor.execute(
            "UPDATE col SET models = ?, mod = ?", (json.dumps(models_data, sort_keys=True), timestamp * 1000)
        )
        conn.commit()
    finally:
        conn.close()


def _zip_entry(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.create_system = 3
    info.external_attr = 0o644 << 16
    return info


def write_package(
    out_path: Path,
    root: str,
    decks: Sequence[PackageDeck],
    notes: Sequence[PackagedNote],
    notetype_mods: Mapping[int, tuple[NoteType, int]],
    media: Mapping[str, bytes],
) -> None:
    """Write the ``.apkg`` atomically: same inputs give the same bytes; a failure leaves the old file."""
    with tempfile.TemporaryDirectory(prefix="deckgen-") as tmp:
        db_path = Path(tmp) / "collection.anki2"
        build_collection(db_path, root, decks, notes, notetype_mods)
        zip_path = Path(tmp) / "package.apkg"
        names = sorted(media)
        with zipfile.ZipFile(zip_path, "w") as zf:
            zf.writestr(_zip_entry("collection.anki2"), db_path.read_bytes())
            zf.writestr(_zip_entry("media"), json.dumps({str(i): n for i, n in enumerate(names)}))
            for i, name in enumerate(names):
                zf.writestr(_zip_entry(str(i)), media[name])
        atomic_write(out_path, zip_path.read_bytes())


def ensure_writable(out_dir: Path) -> None:
    """Fail early (before any work) when the output folder cannot be created or written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if not os.access(out_dir, os.W_OK):
        raise PermissionError(f"cannot write to {out_dir}")
