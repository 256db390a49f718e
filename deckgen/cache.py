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

from deckgen import render
from deckgen.errors import Diagnostic, Severity
from deckgen.model import NOTE_CLASSES, Body, Category, Kind, LintConfig, Note, SourceLocation
from deckgen.parse import FileParser, parse_category

CACHE_DIR = ".cache"
CACHE_FORMAT = 1  # bump when the segment layout or an entry encoding changes

_MAGIC = b"DGCACHE1"
_HEADER = struct.Struct("<8sII")  # magic, entry count, CRC of the index
_ENTRY = struct.Struct("<16sQII")  # key, payload offset (from the end of the index), length, CRC
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

    Reads are lock-free snapshots (each segment is read whole, once, on the first lookup); writes
    add one new segment per build, or — when segments pile up or hold many entries this build did
    not use — replace them all with one compacted segment of the entries in use.
    """

    def __init__(self, root: Path, namespace: str, salt: str) -> None:
        self.base = root / namespace
        self.dir = self.base / _digest(str(CACHE_FORMAT).encode(), salt.encode()).hex()[:24]
        self._index: dict[bytes, tuple[int, int]] | None = None  # key -> (segment, entry number)
        self._data: list[bytes] = []
        self._segments: list[Path] = []
        self._pending: dict[bytes, bytes] = {}
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
            count = _valid_count(data)
            if count is None:
                continue
            n = len(self._data)
            self._data.append(data)
            self._segments.append(path)
            start = _HEADER.size
            keys = [data[i : i + 16] for i in range(start, start + count * _ENTRY.size, _ENTRY.size)]
            index.update(zip(keys, ((n, i) for i in range(count)), strict=True))
        self._index = index
        return index

    def _paths(self) -> list[Path]:
        try:
            return sorted(self.dir.glob("*.seg"))
        except OSError:
            return []

    def _entry(self, found: tuple[int, int]) -> bytes | None:
        data = self._data[found[0]]
        count = _HEADER.unpack_from(data)[1]
        _, offset, length, crc = _ENTRY.unpack_from(data, _HEADER.size + found[1] * _ENTRY.size)
        start = _HEADER.size + count * _ENTRY.size + offset
        payload = data[start : start + length]
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
        self._pending[key] = payload
        self._used.add(key)

    def keep(self, keys: Iterable[bytes]) -> None:
        """Entries this build relies on without reading them (compaction keeps them)."""
        self._kept.append(keys)

    def forget(self, key: bytes) -> None:
        """Drop an entry that decoded but turned out unusable (it will not be written again)."""
        self._used.discard(key)
        if self._index is not None:
            self._index.pop(key, None)

    def flush(self) -> None:
        """Persist this build's new entries; best effort: a cache that cannot be written is skipped."""
        live = self._used.union(*self._kept)
        new = dict(self._pending)
        self._pending.clear()
        try:
            if self._index is None:  # nothing was looked up: the headers are enough to decide
                counts = [_header_count(path) for path in self._paths()]
                segments, on_disk = len(counts), sum(counts)
            else:
                new = {k: v for k, v in new.items() if k not in self._index}
                segments, on_disk = len(self._segments), len(self._index)
            stale = on_disk - (len(live) - len(new))  # entries on disk this build did not need
            if segments >= _MAX_SEGMENTS or stale > len(live) // 2 + 256:
                self._compact(live, new)
            elif new:
                _write_segment(self.dir, sorted(new.items()), len(new))
        except OSError:
            return

    def _compact(self, live: set[bytes], new: dict[bytes, bytes]) -> None:
        index = self._load()
        entries = []
        for key in sorted(live):
            payload = new.get(key)
            if payload is None and key in index:
                payload = self._entry(index[key])
            if payload is not None:
                entries.append((key, payload))
        _write_segment(self.dir, entries, len(entries))
        for path in self._segments:
            path.unlink(missing_ok=True)
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


def _header_count(path: Path) -> int:
    with path.open("rb") as fh:
        head = fh.read(_HEADER.size)
    return _HEADER.unpack(head)[1] if len(head) == _HEADER.size and head.startswith(_MAGIC) else 0


def _valid_count(data: bytes) -> int | None:
    """The number of entries of a valid segment, or None for a file that is not one (or is damaged)."""
    if len(data) < _HEADER.size:
        return None
    magic, count, index_crc = _HEADER.unpack_from(data)
    index_end = _HEADER.size + count * _ENTRY.size
    if magic != _MAGIC or index_end > len(data) or zlib.crc32(data[_HEADER.size : index_end]) != index_crc:
        return None
    return int(count)


def _write_segment(directory: Path, entries: Iterable[tuple[bytes, bytes]], count: int) -> None:
    """Write a segment to a temp file and rename it into place (readers never see a partial file)."""
    directory.mkdir(parents=True, exist_ok=True)
    payloads: list[bytes] = []
    index = bytearray()
    offset = 0
    for key, payload in entries:
        index += _ENTRY.pack(key, offset, len(payload), zlib.crc32(payload))
        payloads.append(payload)
        offset += len(payload)
    assert len(payloads) == count
    fd, tmp = tempfile.mkstemp(prefix=".", suffix=".part", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(_HEADER.pack(_MAGIC, count, zlib.crc32(index)))
            fh.write(index)
            for payload in payloads:
                fh.write(payload)
        os.replace(tmp, directory / f"{uuid.uuid4().hex}.seg")
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
    package = Path(render.__file__).parent
    for path in sorted(package.glob("*.py")):
        h.update(path.name.encode())
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

    def flush(self) -> None:
        for store in (self.render.store, self.lint.store, self.memo.store):
            if store is not None:
                store.flush()


def open_caches(root: Path | None, config: LintConfig) -> Caches:
    """The caches in ``root`` (e.g. ``build/.cache``); all disabled when it is None."""
    if root is None:
        return Caches(RenderCache(None), LintCache(None, config), MemoCache(None))
    code, renderer = code_salt(), render_salt()
    return Caches(
        RenderCache(SegmentStore(root, "render", renderer)),
        LintCache(SegmentStore(root, "lint", code), config),
        MemoCache(SegmentStore(root, "memo", f"{code}|{renderer}|{sys.version}")),
    )
