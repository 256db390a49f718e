"""Write a deterministic ``.apkg`` with genanki: stable ids, per-note ``mod`` times, atomic rename.

genanki (0.13.1, unmaintained) is used only here. It stamps every note with the package timestamp
and derives note and card ids from the clock; deckgen needs each note's own ``mod`` (from the lock)
and ids that never change, so genanki writes the collection, decks and notetypes, and the notes
and cards rows (``_note_rows``) are inserted in bulk here. The collection is built in memory and
zipped with chunked, multi-core deflate (``_zip``).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sqlite3
import struct
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import genanki

from deckgen.lock import atomic_write
from deckgen.notetypes import ROOT_DECK_ID, NoteType
from deckgen.parallel import available_cores
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


def _note_rows(packaged: PackagedNote, deck_id: int) -> tuple[tuple[object, ...], list[tuple[object, ...]]]:
    """The ``notes`` row and ``cards`` rows of one note, with its own id, ``mod`` and card ids.

    genanki would stamp every note with the package time and derive ids from the clock; these
    rows are what genanki's ``Note.write_to_db`` writes, with stable values instead.
    """
    rn, mod = packaged.rendered, packaged.mod
    guid = rn.guid
    note_id = _stable_id("note", guid)
    tags = " " + " ".join(rn.tags) + " "
    # id, guid, notetype, mod, usn, tags, fields, sort field, checksum, flags, data
    note: tuple[object, ...] = (
        note_id,
        guid,
        rn.notetype.id,
        mod,
        -1,
        tags,
        "\x1f".join(rn.fields),
        rn.fields[0],
        0,
        0,
        "",
    )
    # id, note, deck, ord, mod, usn, type, queue, due, interval, factor, reps, lapses, left, odue, odid, flags, data
    cards: list[tuple[object, ...]] = [
        (_stable_id("card", guid, o), note_id, deck_id, o, mod, -1, 0, 0, packaged.due, 0, 0, 0, 0, 0, 0, 0, 0, "")
        for o in rn.card_ords
    ]
    return note, cards


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
    root: str,
    decks: Sequence[PackageDeck],
    notes: Sequence[PackagedNote],
    notetype_mods: Mapping[int, tuple[NoteType, int]],
) -> bytes:
    """The Anki collection database (schema 11, as genanki makes it), built in memory, as file bytes."""
    models = {nt_id: _model(nt) for nt_id, (nt, _) in notetype_mods.items()}
    gdecks = {d.name: genanki.Deck(deck_id(d.name, root), d.name, d.description) for d in decks}
    for d in gdecks.values():
        for m in models.values():
            d.add_model(m)
    note_rows: list[tuple[object, ...]] = []
    card_rows: list[tuple[object, ...]] = []
    by_deck: dict[str, list[PackagedNote]] = {name: [] for name in gdecks}
    for pn in notes:
        by_deck[pn.rendered.deck].append(pn)
    for name, deck_notes in by_deck.items():  # notes grouped by deck, as genanki writes them
        for pn in deck_notes:
            note, cards = _note_rows(pn, gdecks[name].deck_id)
            note_rows.append(note)
            card_rows += cards
    timestamp = max([pn.mod for pn in notes] + [mod for _, mod in notetype_mods.values()] + [0])
    conn = sqlite3.connect(":memory:")
    try:
        cursor = conn.cursor()
        genanki.Package(list(gdecks.values())).write_to_db(cursor, timestamp, iter(()))
        cursor.executemany("INSERT INTO notes VALUES(?,?,?,?,?,?,?,?,?,?,?);", note_rows)
        cursor.executemany("INSERT INTO cards VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?);", card_rows)
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
        return conn.serialize()
    finally:
        conn.close()


# Deflate works on fixed-size chunks compressed independently (in parallel on several cores) and
# joined into one stream, as pigz does. The chunk size must stay fixed: it decides the bytes written,
# so a machine with more cores writes exactly the same package.
DEFLATE_CHUNK = 1 << 20
_DOS_DATE = ((ZIP_DATE[0] - 1980) << 9) | (ZIP_DATE[1] << 5) | ZIP_DATE[2]
_DOS_TIME = (ZIP_DATE[3] << 11) | (ZIP_DATE[4] << 5) | (ZIP_DATE[5] // 2)


def _deflate_chunk(chunk: bytes, last: bool) -> bytes:
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)  # raw deflate, zlib's default level
    return compressor.compress(chunk) + compressor.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)


def _deflate(data: bytes) -> bytes:
    """Raw deflate of ``data``; a non-final chunk ends on a byte boundary, so the pieces concatenate."""
    view = memoryview(data)
    chunks = [bytes(view[i : i + DEFLATE_CHUNK]) for i in range(0, len(data), DEFLATE_CHUNK)] or [b""]
    lasts = [i == len(chunks) - 1 for i in range(len(chunks))]
    if len(chunks) == 1:
        return _deflate_chunk(chunks[0], True)
    with ThreadPoolExecutor(max_workers=min(len(chunks), available_cores())) as pool:  # zlib releases the GIL
        return b"".join(pool.map(_deflate_chunk, chunks, lasts))


def _zip(entries: Sequence[tuple[str, bytes]]) -> bytes:
    """A zip archive of deflated entries with fixed dates and permissions."""
    if len(entries) >= 0xFFFF or sum(len(data) for _, data in entries) >= 0xFFFFFFFF // 2:
        return _zip64(entries)
    out = bytearray()
    directory = bytearray()
    for name, data in entries:
        raw = name.encode("ascii")
        packed = _deflate(data)
        crc = zlib.crc32(data)
        common = struct.pack("<HHHHHIII", 20, 0, 8, _DOS_TIME, _DOS_DATE, crc, len(packed), len(data))
        directory += struct.pack("<IH", 0x02014B50, (3 << 8) | 20) + common
        directory += struct.pack("<HHHHHII", len(raw), 0, 0, 0, 0, 0o100644 << 16, len(out)) + raw
        out += struct.pack("<I", 0x04034B50) + common + struct.pack("<HH", len(raw), 0) + raw + packed
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries), len(directory), len(out), 0)
    return bytes(out + directory + end)


def _zip64(entries: Sequence[tuple[str, bytes]]) -> bytes:
    """Archives too large for plain zip headers: zipfile writes the zip64 extensions (one core, slower)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", allowZip64=True) as zf:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            info.external_attr = 0o100644 << 16
            zf.writestr(info, data)
    return buffer.getvalue()


def write_package(
    out_path: Path,
    root: str,
    decks: Sequence[PackageDeck],
    notes: Sequence[PackagedNote],
    notetype_mods: Mapping[int, tuple[NoteType, int]],
    media: Mapping[str, bytes],
) -> None:
    """Write the ``.apkg`` atomically: same inputs give the same bytes; a failure leaves the old file."""
    collection = build_collection(root, decks, notes, notetype_mods)
    names = sorted(media)
    entries = [("collection.anki2", collection)]
    entries.append(("media", json.dumps({str(i): n for i, n in enumerate(names)}).encode()))
    entries += [(str(i), media[name]) for i, name in enumerate(names)]
    atomic_write(out_path, _zip(entries))


def ensure_writable(out_dir: Path) -> None:
    """Fail early (before any work) when the output folder cannot be created or written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if not os.access(out_dir, os.W_OK):
        raise PermissionError(f"cannot write to {out_dir}")
