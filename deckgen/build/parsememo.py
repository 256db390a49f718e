"""Each source file's parse, remembered in the build cache under its path and bytes (with its notes' digests, so
unchanged notes are not hashed again); on a cold build of a big deck, parsed by the workers."""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import orjson

from deckgen.build.cache import Cache
from deckgen.build.parallel import WorkPool
from deckgen.build.plain import category_from, category_plain, note_digest
from deckgen.errors import Diagnostic
from deckgen.sources.model import Category, Note
from deckgen.sources.parse import FOLDER_FILE, parse_category

# Uncached sources below this many bytes are parsed here (~15 ms for 200 KB): a worker's result comes back
# later than that, and an edited file is often the first the parse asks for.
WORKER_PARSE_BYTES = 1 << 20


def parse_plain(data: bytes, path: Path) -> bytes:
    """``parse_category`` in a worker: the file's ``category_plain``, encoded (the parent reads it as it
    reads a cached parse)."""
    category, problems = parse_category(data, path)
    digests = [note_digest(n) for n in category.notes] if category is not None else []
    return orjson.dumps(category_plain(category, problems, path, digests))


class ParseMemo:
    """``parse_category`` for a build's files (``parse``), each file's result kept in the cache under its
    path and bytes, with its notes' digests (``digest``) so unchanged notes are not hashed again. When
    the pool is already started and the cache lacks many files (a cold build of a big deck), the workers
    parse them, while this process reads their results in turn."""

    def __init__(self, cache: Cache, files: Mapping[Path, bytes], pool: WorkPool | None = None) -> None:
        self.cache, self.files = cache, files
        self.keys = {path: cache.key("parse", path.as_posix(), data) for path, data in files.items()}
        self.known = cache.get_many(list(self.keys.values()))
        self.digests: dict[int, bytes] = {}  # by id() of the notes this memo returned (alive for the build)
        self.fresh: list[tuple[bytes, Any]] = []  # (key, value) to give to the cache
        self.jobs: dict[Path, Future[bytes]] = {}
        missing = [p for p in sorted(files) if p.name != FOLDER_FILE and self.keys[p] not in self.known]
        worth = sum(len(files[path]) for path in missing) >= WORKER_PARSE_BYTES
        if worth and pool is not None and pool.started and pool.jobs > 1:
            for path in missing:  # (in the order parse_deck asks)
                self.jobs[path] = pool.submit(parse_plain, files[path], path)

    def parse(self, data: bytes, path: Path) -> tuple[Category | None, list[Diagnostic]]:
        key = self.keys.get(path) if self.files.get(path) is data else None
        parsed = category_from(self.known.get(key), path) if key is not None else None
        job = self.jobs.pop(path, None)
        if parsed is None and job is not None and key is not None:
            try:
                value = orjson.loads(job.result())
            except Exception:  # the worker died or failed: parsed here, raising what parsing raises
                value = None
            parsed = category_from(value, path)
            if parsed is not None and self.cache.storing:
                self.fresh.append((key, value))
        if parsed is None:
            category, problems = parse_category(data, path)
            digests = [note_digest(n) for n in category.notes] if category is not None else []
            if key is not None and self.cache.storing:
                self.fresh.append((key, category_plain(category, problems, path, digests)))
        else:
            category, problems, digests = parsed
        if category is not None:
            self.digests.update((id(n), d) for n, d in zip(category.notes, digests, strict=True))
        return category, problems

    def digest(self, note: Note) -> bytes:
        return self.digests.get(id(note)) or note_digest(note)

    def remember(self) -> None:
        """Give the files parsed afresh to the cache."""
        for key, value in self.fresh:
            self.cache.put(key, value)
        self.fresh = []
