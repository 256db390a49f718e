"""Build caches under the output folder (``build/.cache/``): rendered Markdown and per-note lint findings.

A cache only ever saves work; it never changes what a build produces. Entries are keyed by a hash
of their whole input plus a *salt* naming everything else that decides the output (the renderer's
version and extension settings, deckgen's own code), so a stale entry is never looked up. Entries
live in append-only *segment* files written to a temp name and renamed into place, so concurrent
builds never see a half-written file; every entry carries a CRC, and anything unreadable —
a truncated file, a flipped bit, a foreign file — is a miss, never an error.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import marshal
import os
import struct
import sys
import tempfile
import time
import uuid
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from enum import Enum
from importlib.metadata import version
from pathlib import Path
from typing import Any

from deckgen.errors import Diagnostic, Severity
from deckgen.render import markdown as render
from deckgen.sources.model import NOTE_CLASSES, Body, Category, Kind, LintConfig, Note, SourceLocation
from deckgen.sources.parse import FileParser, parse_category

CACHE_DIR = ".cache"
CACHE_FORMAT = 2  # bump when the segment layout or an entry encoding changes

# A segment: magic, payloads, then the index (one entry per payload) and a footer pointing at it.
# The index comes last so that a build streams payloads to disk as it makes them.
_MAGIC = b"DGCACHE2"
_ENTRY = struct.Struct("<16sQII")  # key, payload offset in the file, length, CRC of the payload
_FOOTER = struct.Struct("<QII8s")  # index offset, entry count, CRC of the index, end magic
_END = b"DGCEND02"
_MAX_SEGMENTS = 8  # more files than this and the next write compacts them into one
_STALE_PART_SECONDS = 3600  # leftovers of crashed writers older than this are removed on compaction


def _digest(*parts: bytes) -> bytes:
    h = hashlib.blake2b(digest_size=16)
    for part in parts:
        h.update(len(part).to_bytes(8, "little"))
        h.update(part)
    return h.digest()


def _salted(salt: str) -> hashlib.blake2b:
    """A hasher primed with the length-prefixed salt: keys are then ``copy()`` + the entry's input."""
    data = salt.encode()
    return hashlib.blake2b(len(data).to_bytes(8, "little") + data, digest_size=16)


_FLAGS = {(i, r): bytes([i, r]) for i in (False, True) for r in (False, True)}


class SegmentStore:
    """Key → bytes entries of one namespace and salt, in segment files under ``root/namespace/<salt>``.

    Reads are lock-free snapshots (each segment is read whole, once, on the first lookup). A build
    streams its new entries into one new segment (a temp file renamed into place when complete);
    when segments pile up or hold many entries the build did not use, they are all replaced by one
    compacted segment of the entries in use.
    """

    def __init__(self, root: Path, namespace: str, salt: str, *, writable: bool = True) -> None:
        self.writable = writable
        self.base = root / namespace
        self.dir = self.base / _digest(str(CACHE_FORMAT).encode(), salt.encode()).hex()[:24]
        self._index: dict[bytes, tuple[int, int]] | None = None  # key -> (segment, entry number)
        self._data: list[bytes] = []
        self._segments: list[Path] = []
        self._writer: _SegmentWriter | None = None
        self._broken = False  # the folder cannot be written: stop trying for this build
        self._used: set[bytes] = set()
        self._kept: list[Iterable[bytes]] = []

    def _load(self) -> dict[bytes, tuple[int, int]]:
        if self._index is not None:
            return self._index
        index: dict[bytes, tuple[int, int]] = {}
        for path in self._paths():
            try:
                data = path.read_bytes()
            except OSError:
                continue
            found = _valid_index(data)
            if found is None:
                continue
            start, count = found
            n = len(self._data)
            self._data.append(data)
            self._segments.append(path)
            keys = [data[i : i + 16] for i in range(start, start + count * _ENTRY.size, _ENTRY.size)]
            index.update(zip(keys, ((n, start + i * _ENTRY.size) for i in range(count)), strict=True))
        self._index = index
        return index

    def _paths(self) -> list[Path]:
        try:
            return sorted(self.dir.glob("*.seg"))
        except OSError:
            return []

    def _entry(self, found: tuple[int, int]) -> bytes | None:
        data = self._data[found[0]]
        _, offset, length, crc = _ENTRY.unpack_from(data, found[1])
        payload = data[offset : offset + length]
        return payload if len(payload) == length and zlib.crc32(payload) == crc else None

    def get(self, key: bytes) -> bytes | None:
        found = self._load().get(key)
        if found is None:
            return None
        payload = self._entry(found)
        if payload is None:
            del self._index[key]  # type: ignore[union-attr]
            return None
        self._used.add(key)
        return payload

    def put(self, key: bytes, payload: bytes) -> None:
        """Add an entry; it goes straight to this build's new segment, not into memory."""
        self._used.add(key)
        if self._broken or not self.writable:
            return
        try:
            if self._writer is None:
                self._writer = _SegmentWriter(self.dir)
            self._writer.add(key, payload)
        except OSError:
            self._broken = True
            self._abort()

    def keep(self, keys: Iterable[bytes]) -> None:
        """Entries this build relies on without reading them (compaction keeps them)."""
        self._kept.append(keys)

    def forget(self, key: bytes) -> None:
        """Drop an entry that decoded but turned out unusable (it will not be written again)."""
        self._used.discard(key)
        if self._index is not None:
            self._index.pop(key, None)

    def flush(self) -> None:
        """Finish this build's segment and compact if needed; best effort, never an error."""
        if not self.writable:
            return
        writer, self._writer = self._writer, None
        try:
            new = writer.finish() if writer is not None else 0
            live = self._used.union(*self._kept)
            counts = [_footer_count(path) for path in self._paths()]
            stale = sum(counts) - len(live)  # entries on disk this build did not need (about)
            if len(counts) > _MAX_SEGMENTS or (new and stale > len(live) // 2 + 256):
                self._compact(live)
        except OSError:
            if writer is not None:
                writer.abort()

    def discard(self) -> None:
        """Drop what this build would have added (it failed before ``flush``)."""
        self._abort()

    def _abort(self) -> None:
        if self._writer is not None:
            self._writer.abort()
            self._writer = None

    def _compact(self, live: set[bytes]) -> None:
        """Rewrite every segment on disk as one, keeping only the entries in ``live``."""
        self._index = None
        self._data, self._segments = [], []
        index = self._load()
        writer = _SegmentWriter(self.dir)
        try:
            for key in sorted(live & index.keys()):
                payload = self._entry(index[key])
                if payload is not None:
                    writer.add(key, payload)
            writer.finish()
        except BaseException:
            writer.abort()
            raise
        for path in self._segments:
            path.unlink(missing_ok=True)
        self._data = []
        self._remove_leftovers()

    def _remove_leftovers(self) -> None:
        """Other salts' folders (an older renderer or deckgen) and temp files of crashed writers."""
        for other in self.base.iterdir():
            if other.is_dir() and other != self.dir:
                for path in other.iterdir():
                    path.unlink(missing_ok=True)
                other.rmdir()
        cutoff = time.time() - _STALE_PART_SECONDS
        for part in self.dir.glob(".*.part"):
            if part.stat().st_mtime < cutoff:
                part.unlink(missing_ok=True)


class _SegmentWriter:
    """Streams entries into a temp file; ``finish`` adds the index and renames it into place."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        fd, name = tempfile.mkstemp(prefix=".", suffix=".part", dir=directory)
        self.path = Path(name)
        self.file = os.fdopen(fd, "wb")
        self.file.write(_MAGIC)
        self.offset = len(_MAGIC)
        self.index = bytearray()
        self.keys: set[bytes] = set()

    def add(self, key: bytes, payload: bytes) -> None:
        if key in self.keys:
            return
        self.keys.add(key)
        self.file.write(payload)
        self.index += _ENTRY.pack(key, self.offset, len(payload), zlib.crc32(payload))
        self.offset += len(payload)

    def finish(self) -> int:
        """Complete and publish the segment (readers never see a partial one); returns its entry count."""
        try:
            if not self.keys:
                self.abort()
                return 0
            self.file.write(self.index)
            self.file.write(_FOOTER.pack(self.offset, len(self.keys), zlib.crc32(self.index), _END))
            self.file.close()
            os.replace(self.path, self.directory / f"{uuid.uuid4().hex}.seg")
            return len(self.keys)
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        self.file.close()
        self.path.unlink(missing_ok=True)


def _footer_count(path: Path) -> int:
    """Entries in a segment, from its footer alone (0 for anything that is not a segment)."""
    try:
        with path.open("rb") as fh:
            fh.seek(-_FOOTER.size, os.SEEK_END)
            _, count, _, end = _FOOTER.unpack(fh.read(_FOOTER.size))
    except (OSError, struct.error):
        return 0
    return int(count) if end == _END else 0


def _valid_index(data: bytes) -> tuple[int, int] | None:
    """(index offset, entry count) of a valid segment, or None for a damaged or foreign file."""
    if len(data) < len(_MAGIC) + _FOOTER.size or not data.startswith(_MAGIC):
        return None
    start, count, index_crc, end = _FOOTER.unpack_from(data, len(data) - _FOOTER.size)
    if end != _END or start + count * _ENTRY.size + _FOOTER.size != len(data):
        return None
    if zlib.crc32(data[start : start + count * _ENTRY.size]) != index_crc:
        return None
    return int(start), int(count)


# --- rendered Markdown --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Conversion:
    """One ``Renderer.convert`` call's result, with every image it resolved (as passed, and to what name)."""

    html: str
    resolved: tuple[tuple[str, str], ...] = ()
    # (src, message, hint, rule) of images that could not be resolved; such results are never cached.
    errors: tuple[tuple[str, str, str, str], ...] = ()

    @property
    def media(self) -> list[str]:
        return [name for _, name in self.resolved]


def render_salt() -> str:
    """Everything besides the Markdown text that decides a conversion's HTML."""
    source = Path(render.__file__).read_bytes()
    return "|".join(
        (
            render.renderer_version(),
            f"nh3={version('nh3')}",
            hashlib.sha256(source).hexdigest(),
        )
    )


class RenderCache:
    """Conversions keyed by (text, inline, whether images are resolved); ``None`` store = disabled."""

    def __init__(self, store: SegmentStore | None) -> None:
        self.store = store
        self._hash = _salted(render_salt())

    def key(self, text: str, inline: bool, resolving: bool) -> bytes:
        h = self._hash.copy()
        h.update(_FLAGS[inline, resolving])
        h.update(text.encode("utf-8", "surrogatepass"))
        return h.digest()

    def get(self, key: bytes) -> Conversion | None:
        payload = self.store.get(key) if self.store else None
        if payload is None:
            return None
        try:
            (meta_len,) = struct.unpack_from("<I", payload)
            meta = payload[4 : 4 + meta_len]
            resolved = tuple((str(s), str(n)) for s, n in json.loads(meta)) if meta else ()
            return Conversion(payload[4 + meta_len :].decode("utf-8"), resolved)
        except (ValueError, TypeError, struct.error):
            self.forget(key)
            return None

    def put(self, key: bytes, conversion: Conversion) -> None:
        if self.store is None or conversion.errors:
            return
        meta = json.dumps(conversion.resolved, ensure_ascii=False).encode() if conversion.resolved else b""
        self.store.put(key, struct.pack("<I", len(meta)) + meta + conversion.html.encode("utf-8"))

    def forget(self, key: bytes) -> None:
        if self.store is not None:
            self.store.forget(key)

    def keep(self, keys: Iterable[bytes]) -> None:
        if self.store is not None:
            self.store.keep(keys)


# --- per-note lint findings ---------------------------------------------------------------------


def code_salt() -> str:
    """A hash of deckgen's own source: any change to a rule (or anything it calls) empties the lint cache."""
    h = hashlib.sha256()
    package = Path(__file__).resolve().parents[1]
    for path in sorted(package.rglob("*.py")):
        h.update(path.relative_to(package).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def config_text(config: object) -> str:
    """A configuration dataclass as text that is the same in every run (sets sorted, nesting kept)."""

    def plain(value: object) -> object:
        if isinstance(value, frozenset | set):
            return sorted(value)
        if hasattr(value, "__dataclass_fields__"):
            return [(f.name, plain(getattr(value, f.name))) for f in fields(value)]  # type: ignore[arg-type]
        return value

    return repr(plain(config))


def _note_text(note: Note) -> str:
    """The note with every line number made relative to its heading, so moving a note keeps its entry.

    Each field is written with its length in front, so different notes never give the same text.
    """
    base = note.location.line
    out = [type(note).__name__]
    for f in fields(note):
        value = getattr(note, f.name)
        if isinstance(value, str):
            text = value
        elif isinstance(value, Body):
            text = f"{value.line - base}:{value.text}"
        elif isinstance(value, SourceLocation):
            text = f"{value.line - base}:{value.col}:{value.path.as_posix()}"
        elif isinstance(value, frozenset):
            text = repr(sorted(value))
        else:
            text = repr(value)
        out.append(f"{len(text)}:{text}")
    return "|".join(out)


class LintCache:
    """Per-note findings keyed by the note (positions relative to its heading) and the lint config."""

    def __init__(self, store: SegmentStore | None, config: LintConfig) -> None:
        self.store = store
        self._hash = _salted(config_text(config))

    def key(self, note: Note) -> bytes:
        h = self._hash.copy()
        h.update(_note_text(note).encode("utf-8", "surrogatepass"))
        return h.digest()

    def get(self, key: bytes, note: Note) -> list[Diagnostic] | None:
        payload = self.store.get(key) if self.store else None
        if payload is None:
            return None
        try:
            return [_rebase(item, note) for item in json.loads(payload)]
        except (ValueError, TypeError, KeyError, IndexError):
            self.store.forget(key)  # type: ignore[union-attr]
            return None

    def put(self, key: bytes, note: Note, found: Sequence[Diagnostic]) -> None:
        if self.store is None:
            return
        items = []
        for d in found:
            loc = d.location
            where: list[object] = (
                [None, loc.line - note.location.line, loc.col]
                if loc.path == note.location.path
                else [str(loc.path), loc.line, loc.col]
            )
            items.append([*where, d.rule, d.message, d.hint, d.severity.value])
        self.store.put(key, json.dumps(items, ensure_ascii=False).encode())

    def keep(self, keys: Iterable[bytes]) -> None:
        if self.store is not None:
            self.store.keep(keys)


def _rebase(item: list[object], note: Note) -> Diagnostic:
    path, line, col, rule, message, hint, severity = item
    if not isinstance(line, int) or not isinstance(col, int):
        raise TypeError("line and column must be integers")
    if path is None:
        location = SourceLocation(note.location.path, note.location.line + line, col)
    else:
        location = SourceLocation(Path(str(path)), line, col)
    return Diagnostic(location, str(rule), str(message), str(hint), Severity(severity))


class MemoCache:
    """Larger answers — a whole file's notes, the deck's duplicate prompts — as marshal-encoded values.

    Values hold only tuples, lists, strings, numbers and None; the salt covers deckgen's code, the
    renderer and the Python version (marshal's format is Python's own).
    """

    def __init__(self, store: SegmentStore | None) -> None:
        self.store = store

    @staticmethod
    def key(*parts: bytes) -> bytes:
        return _digest(*parts)

    def get(self, key: bytes) -> Any:
        payload = self.store.get(key) if self.store else None
        if payload is None:
            return None
        try:
            return marshal.loads(payload)
        except (ValueError, EOFError, TypeError):
            self.store.forget(key)  # type: ignore[union-attr]
            return None

    def put(self, key: bytes, value: Any) -> None:
        if self.store is None:
            return
        try:
            self.store.put(key, marshal.dumps(value))
        except ValueError:  # an unmarshallable value: not cached
            return


# --- parsed category files ---------------------------------------------------------------------

_MODEL_CLASSES: dict[str, type] = {
    cls.__name__: cls for cls in (*NOTE_CLASSES.values(), Body, SourceLocation, Category, Diagnostic)
}
_ENUMS: dict[str, type[Enum]] = {"Kind": Kind, "Severity": Severity}


def encode_model(value: object) -> object:
    """A parsed model value (frozen dataclasses, enums, paths, tuples) as plain marshal-able tuples."""
    if value is None or isinstance(value, str | int | float):
        return value
    if isinstance(value, Path):
        return ("P", str(value))
    if isinstance(value, Enum):
        return ("E", type(value).__name__, value.value)
    if isinstance(value, tuple):
        return ("T", tuple(encode_model(v) for v in value))
    if isinstance(value, frozenset):
        return ("F", tuple(sorted(encode_model(v) for v in value)))  # type: ignore[type-var]
    if type(value).__name__ in _MODEL_CLASSES and type(value) is _MODEL_CLASSES[type(value).__name__]:
        return ("D", type(value).__name__, tuple(encode_model(getattr(value, f.name)) for f in fields(value)))  # type: ignore[arg-type]
    raise TypeError(f"cannot cache a {type(value).__name__}")


class _Decoder:
    """The inverse of ``encode_model``; builds only the model's own classes, sharing equal paths."""

    def __init__(self) -> None:
        self.paths: dict[str, Path] = {}

    def __call__(self, value: Any) -> Any:
        if type(value) is not tuple:
            return value
        tag = value[0]
        if tag == "D":
            return _MODEL_CLASSES[value[1]](*[self(v) if type(v) is tuple else v for v in value[2]])
        if tag == "T":
            return tuple([self(v) if type(v) is tuple else v for v in value[1]])
        if tag == "P":
            path = self.paths.get(value[1])
            if path is None:
                path = self.paths[value[1]] = Path(value[1])
            return path
        if tag == "E":
            return _ENUMS[value[1]](value[2])
        if tag == "F":
            return frozenset(self(v) for v in value[1])
        raise ValueError(f"unknown tag {tag!r}")


class ParsedFiles:
    """``parse.parse_category`` that reuses the result for a file unchanged byte for byte."""

    def __init__(self, memo: MemoCache) -> None:
        self.memo = memo
        self.decode = _Decoder()

    def _restore(self, entry: Any) -> tuple[Category | None, list[Diagnostic]] | None:
        try:
            category, found = self.decode(entry[0]), [self.decode(d) for d in entry[1]]
        except (TypeError, ValueError, KeyError, IndexError):
            return None
        if (category is None or isinstance(category, Category)) and all(isinstance(d, Diagnostic) for d in found):
            return category, found
        return None

    def __call__(self, data: bytes, path: Path) -> tuple[Category | None, list[Diagnostic]]:
        key = self.memo.key(b"parse", str(path).encode("utf-8", "surrogatepass"), data)
        entry = self.memo.get(key)
        if entry is not None:
            restored = self._restore(entry)
            if restored is not None:
                return restored
            self.memo.store.forget(key)  # type: ignore[union-attr]
        category, found = parse_category(data, path)
        if self.memo.store is not None:
            with contextlib.suppress(TypeError):  # a model value this codec does not know yet: not cached
                self.memo.put(key, (encode_model(category), tuple(encode_model(d) for d in found)))
        return category, found


@dataclass(frozen=True, slots=True)
class Caches:
    render: RenderCache
    lint: LintCache
    memo: MemoCache

    def parse_file(self) -> FileParser | None:
        """A category-file parser that reuses results, or None when caching is off."""
        return None if self.memo.store is None else ParsedFiles(self.memo)

    def warm(self) -> bool:
        """Whether an earlier build left entries here (cheap: looks for segment files only)."""
        return any(store._paths() for store in self.stores())

    def stores(self) -> list[SegmentStore]:
        return [s for s in (self.render.store, self.lint.store, self.memo.store) if s is not None]

    def flush(self) -> None:
        for store in self.stores():
            store.flush()

    def discard(self) -> None:
        for store in self.stores():
            store.discard()


def open_caches(root: Path | None, config: LintConfig, *, writable: bool = True) -> Caches:
    """The caches in ``root`` (e.g. ``build/.cache``); all disabled when it is None.

    Read-only caches (``writable=False``: dry runs, ``deckgen check``) never touch the disk.
    """
    if root is None:
        return Caches(RenderCache(None), LintCache(None, config), MemoCache(None))
    code, renderer = code_salt(), render_salt()
    return Caches(
        RenderCache(SegmentStore(root, "render", renderer, writable=writable)),
        LintCache(SegmentStore(root, "lint", code, writable=writable), config),
        MemoCache(SegmentStore(root, "memo", f"{code}|{renderer}|{sys.version}", writable=writable)),
    )
