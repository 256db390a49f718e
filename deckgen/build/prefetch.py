"""Cached renders read and passed through the safety net by worker processes while this process reads and
parses the sources.

A warm build of a big deck spends most of its work restoring cached renders and netting them (a cache
entry is never trusted), and until the deck is parsed it does not know their keys. The last build's
keys are kept in the cache (``remember``); a build starts the workers on them before it reads anything,
so the core this process leaves idle while it reads and parses does that work. The render stage then
takes each note's render by key from here; a key the workers did not serve (a note edited since, a
damaged or forged entry, a failed worker) is read and netted, or rendered, by the stage as before.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from deckgen.anki import notetypes
from deckgen.build.cache import Cache
from deckgen.build.lock import field_hashes
from deckgen.build.parallel import WorkPool, forks
from deckgen.render.markdown import safe_fields
from deckgen.sources.markup import may_hold_unsafe_math

MANIFEST = "rendered keys"  # the cache entry listing the last build's render keys
KEY_SIZE = 16  # bytes of a cache key
# Below ~4000 notes the safety net is quick enough in the build itself (incremental.NET_POOL_MIN_SECONDS).
PREFETCH_MIN_NOTES = 4000
PREFETCH_BATCH = 500
PREFETCH_NICENESS = 10  # the workers' priority below this process's (Unix nice)

Served = tuple[bytes, list[Any], bytes]  # (key, render value with its fields netted, their field hashes)


def read_and_net(path: str, keys: bytes) -> list[Served]:
    """In a worker: the render values stored under ``keys`` (concatenated) in the cache file ``path``, their
    fields through the safety net. Values of another shape, or whose fields name unsafe math (rendered
    again from the source by the stage), are left out."""
    wanted = [keys[i : i + KEY_SIZE] for i in range(0, len(keys), KEY_SIZE)]
    with Cache(Path(path), writable=False, salt="") as cache:  # (keys come whole: no salt needed)
        found = cache.get_many(wanted)
    out: list[Served] = []
    for key, value in found.items():
        try:
            _deck, notetype, fields, *_rest = value
            if type(fields) is not list or len(value) != 7 or may_hold_unsafe_math("\x00".join(fields)):
                continue
            safe = safe_fields(notetypes.by_id()[notetype], tuple(fields))
        except (TypeError, ValueError, KeyError):
            continue
        value[2] = safe
        out.append((key, value, field_hashes(safe)))
    return out


def _lower_priority() -> None:
    with contextlib.suppress(OSError, AttributeError):  # (no os.nice on Windows)
        os.nice(PREFETCH_NICENESS)


class Prefetch:
    """The workers reading and netting the renders the last build used (``keys``; none when not worth it)."""

    def __init__(self, keys: frozenset[bytes] = frozenset(), pool: WorkPool | None = None, path: str = "") -> None:
        self.keys, self._pool, self._path = keys, pool, path  # (``path``: the cache file)
        self._jobs: list[tuple[bytes, Future[list[Served]]]] = []  # (its keys, the job)

    @classmethod
    def start(cls, cache: Cache, jobs: int) -> Prefetch:
        """Start the workers on the last build's keys if that is worth it: a big deck, several cores."""
        # (Workers that import deckgen themselves, spawned, would start too late to be worth it.)
        worth = cache.path is not None and jobs > 1 and forks()
        stored = cache.get(cache.key(MANIFEST)) if worth else None
        if type(stored) is not str or len(stored) < PREFETCH_MIN_NOTES * 2 * KEY_SIZE:
            return cls()
        try:
            packed = bytes.fromhex(stored)
        except ValueError:
            return cls()
        keys = frozenset(packed[i : i + KEY_SIZE] for i in range(0, len(packed), KEY_SIZE))
        # Workers of its own, at a lower priority: the stage's jobs (an edited note's render) never wait
        # behind these, and this process keeps its core while it reads and parses.
        pool = WorkPool(jobs, _lower_priority)
        pool.start()
        prefetch = cls(keys, pool, str(cache.path))
        step = PREFETCH_BATCH * KEY_SIZE
        batches = [packed[i : i + step] for i in range(0, len(packed), step)]
        prefetch._jobs = [(batch, pool.submit(read_and_net, prefetch._path, batch)) for batch in batches]
        return prefetch

    def served(self) -> Iterator[Served]:
        """Each value read and netted (none of a batch whose worker failed). Batches no worker has started
        yet are read and netted here, the last first, while the workers finish theirs."""
        jobs, self._jobs = self._jobs, []
        while jobs:
            keys, job = jobs.pop()
            try:
                yield from read_and_net(self._path, keys) if job.cancel() else job.result()
            except Exception:  # the batch failed (here, or its worker died): the stage reads those keys itself
                continue

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()

    def __enter__(self) -> Prefetch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def remember(cache: Cache, keys: Sequence[bytes]) -> None:
    """Keep ``keys`` (this build's cached renders) for the next build's ``Prefetch`` (too few: none)."""
    value = b"".join(keys).hex() if len(keys) >= PREFETCH_MIN_NOTES else ""
    key = cache.key(MANIFEST)
    if cache.get(key) != value:
        cache.put(key, value)
