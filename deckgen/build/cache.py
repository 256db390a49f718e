"""The build cache: memoised results of pure functions in one SQLite file, ``OUT/.cache/deckgen.sqlite``.

A cache only saves work; it never changes what a build produces. Every value is stored under a
hash of its whole input plus a salt naming everything else that decides it (deckgen's own code,
the renderer's libraries), so a stale value is never looked up. SQLite makes the file crash-safe
and lets concurrent builds read and write it. Values are JSON, never code; anything unreadable is
a miss, and a cache that cannot be opened or written is a warning, never a failed build. Nothing
read from the cache is trusted for safety: rendered HTML is sanitised again on its way out.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import orjson

from deckgen.render.markdown import renderer_version

CACHE_DIR = ".cache"
CACHE_FILE = "deckgen.sqlite"
# A rowid table: values of a kilobyte or more make a WITHOUT ROWID table's B-tree slow to write.
_SCHEMA = "CREATE TABLE memo (key BLOB PRIMARY KEY, value BLOB NOT NULL)"  # value: UTF-8 JSON
_LAYOUT = 3  # PRAGMA user_version of a file with this schema; a file of another layout starts empty
_BATCH = 500  # keys per SELECT (SQLite's limit on bound parameters is far higher)
_SLACK = 1000  # unused entries tolerated beyond the ones in use before the file is pruned
_FLUSH_BYTES = 4 << 20  # values waiting beyond this are written at once, so a big build's memory stays flat


def code_salt() -> str:
    """deckgen's own source and the renderer's library versions: any change empties the cache."""
    h = hashlib.sha256()
    package = Path(__file__).resolve().parents[1]
    for path in sorted(package.rglob("*.py")):
        h.update(path.relative_to(package).as_posix().encode())
        h.update(path.read_bytes())
    h.update(renderer_version().encode())  # the libraries' versions, the renderer's settings
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


@dataclass
class Cache:
    """Key → JSON value memo. ``path`` None (``--no-cache``) or an unusable file: every lookup misses."""

    path: Path | None
    writable: bool = True
    warning: str = ""  # why the cache could not be used, for the build to report
    salt: str = field(default_factory=code_salt)
    _db: sqlite3.Connection | None = None
    _pending: dict[bytes, bytes] = field(default_factory=dict)
    _pending_size: int = 0  # bytes in ``_pending``
    _used: set[bytes] = field(default_factory=set)

    def __post_init__(self) -> None:
        if self.path is None:
            return
        try:
            if self.writable:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            elif not self.path.is_file():
                return
            self._db = sqlite3.connect(self.path, timeout=10, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            if self._layout() != _LAYOUT:
                if not self.writable:
                    self.close()  # nothing this deckgen can read
                    return
                with self._db:
                    self._db.execute("BEGIN IMMEDIATE")
                    if self._layout() != _LAYOUT:  # another build may have just made it
                        self._db.execute("DROP TABLE IF EXISTS memo")
                        self._db.execute(_SCHEMA)
                        self._db.execute(f"PRAGMA user_version = {_LAYOUT}")
        except (OSError, sqlite3.Error) as exc:
            self._fail("cannot open", exc)

    def _layout(self) -> int:
        assert self._db is not None
        (version,) = self._db.execute("PRAGMA user_version").fetchone()
        return int(version)

    def key(self, *parts: str | bytes) -> bytes:
        """The hash of the salt and ``parts`` (each length-prefixed, so different parts never collide)."""
        return self.keyer(*parts[:-1])(parts[-1])

    def keyer(self, *parts: str | bytes) -> Callable[[str | bytes], bytes]:
        """``lambda last: self.key(*parts, last)``, with the common parts hashed once."""
        prefix = hashlib.blake2b(digest_size=16)
        for part in (self.salt, *parts):
            data = part.encode("utf-8", "surrogatepass") if isinstance(part, str) else part
            prefix.update(len(data).to_bytes(8, "little") + data)

        def key(last: str | bytes) -> bytes:
            h = prefix.copy()
            data = last.encode("utf-8", "surrogatepass") if isinstance(last, str) else last
            h.update(len(data).to_bytes(8, "little") + data)
            return h.digest()

        return key

    def get_many(self, keys: Sequence[bytes]) -> dict[bytes, Any]:
        """The decoded values of the keys that are stored (undecodable ones are misses)."""
        found: dict[bytes, Any] = {}
        if self._db is None:
            return found
        try:
            rows: list[tuple[bytes, bytes]] = []
            ordered = sorted(keys)  # in key order, SQLite reads each index page once, stale entries never
            for start in range(0, len(ordered), _BATCH):
                batch = ordered[start : start + _BATCH]
                marks = ",".join("?" * len(batch))
                rows += self._db.execute(f"SELECT key, value FROM memo WHERE key IN ({marks})", batch)
            for key, data in rows:
                try:
                    found[bytes(key)] = orjson.loads(data)
                except orjson.JSONDecodeError:  # (also what a str holding a lone surrogate gives)
                    continue
        except sqlite3.Error as exc:
            self._fail("cannot read", exc)
            return {}
        self._used.update(found)
        return found

    def get(self, key: bytes) -> Any:
        return self.get_many([key]).get(key)

    def keep(self, keys: Iterable[bytes]) -> None:
        """Count ``keys`` as used by this build (another process read them for it): ``save`` keeps them."""
        self._used.update(keys)

    @property
    def storing(self) -> bool:
        """Whether ``put`` values are kept (worth encoding): the cache is open and writable."""
        return self.writable and self._db is not None

    def put(self, key: bytes, value: Any) -> None:
        """Remember ``value`` (JSON-able) under ``key``; written in batches as they fill, the rest by ``save``."""
        self._used.add(key)
        if self.storing:
            try:
                data = self._pending[key] = orjson.dumps(value)
            except orjson.JSONEncodeError:  # e.g. a lone surrogate, which UTF-8 cannot hold: not kept
                return
            self._pending_size += len(data)
            if self._pending_size > _FLUSH_BYTES:
                self._write()

    def _write(self, prune: bool = False) -> None:
        """Write the values put since the last write in one transaction (then, if ``prune``, remove the
        entries this build did not use); best effort."""
        if self._db is None or not self.writable:
            return
        try:
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                # in key order: SQLite then fills its index's pages in turn instead of splitting them
                self._db.executemany("INSERT OR REPLACE INTO memo VALUES (?, ?)", sorted(self._pending.items()))
                self._pending.clear()
                self._pending_size = 0
                if not prune:
                    return
                (total,) = self._db.execute("SELECT count(*) FROM memo").fetchone()
                if total > 2 * len(self._used) + _SLACK:
                    self._db.execute("CREATE TEMP TABLE IF NOT EXISTS used (key BLOB PRIMARY KEY) WITHOUT ROWID")
                    self._db.executemany("INSERT OR IGNORE INTO used VALUES (?)", ((k,) for k in self._used))
                    self._db.execute("DELETE FROM memo WHERE key NOT IN (SELECT key FROM used)")
                    self._db.execute("DROP TABLE used")
        except sqlite3.Error as exc:
            self._fail("cannot write", exc)

    def save(self) -> None:
        """Write what this build learnt and prune unused entries; best effort."""
        self._write(prune=True)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _fail(self, what: str, exc: BaseException) -> None:
        self.warning = f"{what} the build cache {self.path} ({exc}); building without it"
        self.close()

    def __enter__(self) -> Cache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def cache_file(folder: Path | None) -> Path | None:
    """Where the cache under ``folder`` (e.g. ``build/.cache``) lives; None: no cache."""
    return None if folder is None else folder / CACHE_FILE


def open_cache(folder: Path | None, *, writable: bool = True) -> Cache:
    """The cache under ``folder``; None gives a cache that always misses."""
    return Cache(cache_file(folder), writable)
