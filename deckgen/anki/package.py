"""Write a deterministic ``.apkg`` with genanki: stable ids, per-note ``mod`` times, atomic rename.

genanki (0.13.1, unmaintained) is used only here. It stamps every note with the package timestamp
and derives note and card ids from the clock; deckgen needs each note's own ``mod`` (from the lock)
and ids that never change, so genanki writes the collection, decks and notetypes, and the notes
and cards rows (``_note_row``, ``_card_rows``) are inserted in bulk here. The collection is written
to a scratch file and streamed into the zip with chunked, multi-core deflate (``_write_zip``).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import struct
import tempfile
import zlib
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from deckgen.anki.notetypes import NoteType
from deckgen.build.lock import atomic_file
from deckgen.build.parallel import available_cores
from deckgen.render.markdown import RenderedNote
from deckgen.sources.model import deck_id

if TYPE_CHECKING:
    import genanki

ZIP_DATE = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True, slots=True)
class PackagedNote:
    rendered: RenderedNote
    guid: str  # from the lock, the authority on identity
    mod: int
    due: int


@dataclass(frozen=True, slots=True)
class PackageDeck:
    name: str
    description: str = ""


def _stable_id(parts_repr: str) -> int:
    """A positive id below 2**53 (safe in JavaScript), stable for the same parts (given as their repr)."""
    first_52_bits = int.from_bytes(hashlib.sha256(parts_repr.encode()).digest()[:7], "big") >> 4
    return 10**12 + first_52_bits % (2**52 - 10**12)


def note_id(guid: str) -> int:
    return _stable_id(f"('note', {guid!r})")  # repr(("note", guid)), written out: ~2x faster


def card_id(guid: str, ord_: int) -> int:
    return _stable_id(f"('card', {guid!r}, {ord_!r})")


def load_writer() -> None:
    """Import genanki now (~50 ms), e.g. while worker processes finish: writing a package needs it."""
    import genanki  # noqa: F401


def _note_row(packaged: PackagedNote, guid: str, nid: int) -> tuple[object, ...]:
    """The ``notes`` row genanki's ``Note.write_to_db`` writes, with the note's own id and ``mod``.

    genanki would stamp every note with the package time and derive ids from the clock.
    """
    rn = packaged.rendered
    tags = " " + " ".join(rn.tags) + " "
    # id, guid, notetype, mod, usn, tags, fields, sort field, checksum, flags, data
    return (nid, guid, rn.notetype.id, packaged.mod, -1, tags, "\x1f".join(rn.fields), rn.fields[0], 0, 0, "")


def _nid(item: tuple[PackagedNote, str, int, int]) -> int:
    return item[2]


def _card_rows(ordered: list[tuple[PackagedNote, str, int, int]]) -> list[tuple[object, ...]]:
    """The ``cards`` rows of these (note, guid, note id, deck id), with ids that never change, in id order."""
    # id, note, deck, ord, mod, usn, type, queue, due, interval, factor, reps, lapses, left, odue, odid, flags, data
    rows: list[tuple[object, ...]] = [
        (card_id(guid, o), nid, did, o, pn.mod, -1, 0, 0, pn.due, 0, 0, 0, 0, 0, 0, 0, 0, "")
        for pn, guid, nid, did in ordered
        for o in pn.rendered.card_ords
    ]
    rows.sort()
    return rows


def _model(nt: NoteType) -> genanki.Model:
    import genanki  # only for writing a package (~50 ms to import): ``check`` never needs it

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
    deck_uuid: str,
    decks: Sequence[PackageDeck],
    notes: Sequence[PackagedNote],
    notetype_mods: Mapping[int, tuple[NoteType, int]],
) -> None:
    """Write the Anki collection database (schema 11, as genanki makes it) to a new file ``db_path``."""
    import genanki  # (as in ``_model``)

    models = {nt_id: _model(nt) for nt_id, (nt, _) in notetype_mods.items()}
    gdecks = {d.name: genanki.Deck(deck_id(deck_uuid, d.name), d.name, d.description) for d in decks}
    first, *others = gdecks.values()
    for m in models.values():
        first.add_model(m)
    by_deck: dict[str, list[PackagedNote]] = {name: [] for name in gdecks}
    for pn in notes:
        by_deck[pn.rendered.deck].append(pn)
    ordered = [  # notes grouped by deck, as genanki writes them
        (pn, pn.guid, note_id(pn.guid), gdecks[name].deck_id)
        for name, deck_notes in by_deck.items()
        for pn in deck_notes
    ]
    timestamp = max([pn.mod for pn in notes] + [mod for _, mod in notetype_mods.values()] + [0])
    conn = sqlite3.connect(db_path)
    try:
        cursor = conn.cursor()
        # A scratch file turned into the package: no journal, no fsync (the bytes are the same). Pages of
        # 32 KiB hold a note's row without splitting. Measured at 10k notes: 16 KiB pages were ~15 % faster
        # to write than SQLite's 4 KiB ones, and 32 KiB ones ~7 % faster still and ~10 % faster to deflate.
        for pragma in ("page_size=32768", "journal_mode=OFF", "synchronous=OFF", "cache_size=-8192"):  # (8 MiB cache)
            cursor.execute(f"PRAGMA {pragma}")
        # genanki writes the first deck and the notetypes. Each deck it writes reads, extends and rewrites
        # the collection's whole decks and notetypes JSON (quadratic: ~0.5 s for 200 subdecks); the
        # others are added here as it would add them, in one update.
        genanki.Package([first]).write_to_db(cursor, timestamp, iter(()))
        (decks_json,) = cursor.execute("SELECT decks FROM col").fetchone()
        decks_data = json.loads(decks_json)
        decks_data.update({str(d.deck_id): d.to_json() for d in others})
        cursor.execute("UPDATE col SET decks = ?", (json.dumps(decks_data),))
        notes_sql = "INSERT INTO notes VALUES(?,?,?,?,?,?,?,?,?,?,?);"
        cards_sql = "INSERT INTO cards VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?);"
        # Rows in id order: SQLite appends to its tables' B-trees instead of splitting pages, which is
        # faster and leaves a smaller file to compress.
        # (rows made one at a time: each holds the note's fields, hundreds of MB for a big deck)
        cursor.executemany(notes_sql, (_note_row(pn, guid, nid) for pn, guid, nid, _ in sorted(ordered, key=_nid)))
        cursor.executemany(cards_sql, _card_rows(ordered))
        # genanki gives every notetype the package time; ours carry the time their look last changed,
        # so re-importing an unchanged deck leaves users' notetypes alone.
        (models_json,) = cursor.execute("SELECT models FROM col").fetchone()
        models_data = json.loads(models_json)
        for nt_id, (_, mod) in notetype_mods.items():
            models_data[str(nt_id)]["mod"] = mod
            models_data[str(nt_id)]["did"] = deck_id(deck_uuid, decks[0].name)
        cursor.execute(
            "UPDATE col SET models = ?, mod = ?", (json.dumps(models_data, sort_keys=True), timestamp * 1000)
        )
        conn.commit()
    finally:
        conn.close()


# Deflate works on fixed-size chunks compressed independently (in parallel on several cores) and
# joined into one stream, as pigz does. The chunk size must stay fixed: it decides the bytes written,
# so a machine with more cores writes exactly the same package.
DEFLATE_CHUNK = 1 << 20
_DOS_DATE = ((ZIP_DATE[0] - 1980) << 9) | (ZIP_DATE[1] << 5) | ZIP_DATE[2]
_DOS_TIME = (ZIP_DATE[3] << 11) | (ZIP_DATE[4] << 5) | (ZIP_DATE[5] // 2)


# zlib's fastest level: 2.4x less work than its default for a package 15 % larger (genanki stores the
# collection uncompressed, 5x larger still).
DEFLATE_LEVEL = 1


def _deflate_chunk(chunk: bytes | memoryview, last: bool) -> bytes:
    compressor = zlib.compressobj(DEFLATE_LEVEL, zlib.DEFLATED, -15)  # raw deflate
    return compressor.compress(chunk) + compressor.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)


def _chunks(source: bytes | Path) -> Iterator[tuple[bytes | memoryview, bool]]:
    """(chunk, is last) over bytes or a file, read lazily: a big collection never sits in memory."""
    if isinstance(source, bytes):
        view = memoryview(source)
        starts = range(0, len(source), DEFLATE_CHUNK) or range(1)
        for i in starts:
            yield view[i : i + DEFLATE_CHUNK], i + DEFLATE_CHUNK >= len(source)
        return
    with source.open("rb") as fh:
        chunk = fh.read(DEFLATE_CHUNK)
        while True:
            following = fh.read(DEFLATE_CHUNK)
            yield chunk, not following
            if not following:
                return
            chunk = following


def _write_deflated(out: BinaryIO, source: bytes | Path, pool: ThreadPoolExecutor, ahead: int) -> tuple[int, int, int]:
    """Deflate ``source`` into ``out``, ``ahead`` chunks at a time over the pool; (crc, size, packed size)."""
    crc = size = packed = 0
    window: deque[Future[bytes]] = deque()

    def drain(keep: int) -> None:
        nonlocal packed
        while len(window) > keep:
            data = window.popleft().result()
            out.write(data)
            packed += len(data)

    for chunk, last in _chunks(source):
        crc = zlib.crc32(chunk, crc)
        size += len(chunk)
        window.append(pool.submit(_deflate_chunk, chunk, last))
        drain(ahead)
    drain(0)
    return crc, size, packed


def _write_zip(out: BinaryIO, entries: Sequence[tuple[str, bytes | Path]]) -> None:
    """A zip archive of deflated entries with fixed dates and permissions, streamed to ``out``."""
    directory = bytearray()
    cores = available_cores()
    with ThreadPoolExecutor(max_workers=cores) as pool:  # zlib releases the GIL
        for name, source in entries:
            raw = name.encode("ascii")
            offset = out.tell()
            out.write(b"\0" * (30 + len(raw)))  # the local header, filled in once the sizes are known
            crc, size, packed = _write_deflated(out, source, pool, 2 * cores)
            if max(size, packed, offset) >= 0xFFFFFFFF or len(entries) >= 0xFFFF:
                raise ValueError("package too large for a zip without zip64 (over 4 GiB or 65535 files)")
            common = struct.pack("<HHHHHIII", 20, 0, 8, _DOS_TIME, _DOS_DATE, crc, packed, size)
            end = out.tell()
            out.seek(offset)
            out.write(struct.pack("<I", 0x04034B50) + common + struct.pack("<HH", len(raw), 0) + raw)
            out.seek(end)
            directory += struct.pack("<IH", 0x02014B50, (3 << 8) | 20) + common
            directory += struct.pack("<HHHHHII", len(raw), 0, 0, 0, 0, 0o100644 << 16, offset) + raw
    start = out.tell()
    out.write(directory)
    out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries), len(directory), start, 0))


def write_package(
    out_path: Path,
    deck_uuid: str,
    decks: Sequence[PackageDeck],
    notes: Sequence[PackagedNote],
    notetype_mods: Mapping[int, tuple[NoteType, int]],
    media: Mapping[str, bytes],
) -> None:
    """Write the ``.apkg`` atomically: same inputs give the same bytes; a failure leaves the old file.

    The collection is written to a scratch file and streamed into the zip, so memory stays flat
    however large the deck.
    """
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".deckgen-", dir=out_path.parent) as tmp:
        db_path = Path(tmp) / "collection.anki2"
        build_collection(db_path, deck_uuid, decks, notes, notetype_mods)
        names = sorted(media)
        entries: list[tuple[str, bytes | Path]] = [("collection.anki2", db_path)]
        entries.append(("media", json.dumps({str(i): n for i, n in enumerate(names)}).encode()))
        entries += [(str(i), media[name]) for i, name in enumerate(names)]
        with atomic_file(out_path) as fh:
            _write_zip(fh, entries)
