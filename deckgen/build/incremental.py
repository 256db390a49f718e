"""The render and lint stage of a build: cached results first, the rest spread over the CPU cores.

Rendering Markdown and linting one note are pure functions of their inputs, so a result taken
from the cache or computed in another process is exactly the result this process would compute.
Three layers of cache, coarse to fine:

- a whole category file, unchanged byte for byte: its notes' rendered fields, intro and lint
  findings (one lookup per file instead of several per note);
- one note's lint findings (keyed by the note, line numbers relative to its heading);
- one Markdown conversion (keyed by the text), replayed through ``render_note`` itself.

What no cache answers goes to worker processes in batches, or is computed inline when too little
is left to pay for a pool. Images are resolved again for every cached result, so a changed or
deleted image is never hidden by the cache.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import fields
from pathlib import Path
from typing import Any, Protocol, TypeVar

from deckgen.anki import notetypes
from deckgen.build.cache import Caches, Conversion, config_text
from deckgen.build.parallel import WorkPool, available_cores
from deckgen.errors import Diagnostic, Severity
from deckgen.render.markdown import MediaError, RenderedNote, Renderer, render_intro, render_note
from deckgen.sources.check import duplicate_pairs, note_findings
from deckgen.sources.model import Category, Deck, LintConfig, Note, SourceLocation

# Rough serial costs on one core; a pool is started only when the work outweighs its start-up
# (forking the workers and building one Markdown converter in each).
RENDER_SECONDS = 0.35e-3  # one Markdown conversion
LINT_SECONDS = 0.1e-3  # one note's lint
POOL_MIN_SECONDS = 0.4

# (markdown text, inline, path of the Markdown file images are relative to, or None: no images resolved)
Request = tuple[str, bool, str | None]
Progress = Callable[[int, int], None]
T = TypeVar("T")

# The file-level entry stores a RenderedNote field by field; any change to its shape disables it.
_RENDERED_FIELDS = ("note", "deck", "notetype", "fields", "tags", "card_ords", "media")


class ImageResolver(Protocol):
    def resolve(self, md_path: Path, src: str) -> str: ...


ResolverFactory = Callable[[Path], ImageResolver]

_worker_renderer: Renderer | None = None
_worker_resolvers: dict[str, ImageResolver] = {}


def warm_up_worker() -> None:
    """Build the worker's Markdown converter as it starts, while the parent is still parsing."""
    global _worker_renderer
    if _worker_renderer is None:
        _worker_renderer = Renderer()


def convert_batch(factory: ResolverFactory, root: str, requests: Sequence[Request]) -> list[Conversion]:
    """Render a batch of Markdown texts, recording the images each one resolved (runs in a worker)."""
    warm_up_worker()
    assert _worker_renderer is not None
    resolver = _worker_resolvers.get(root)
    if resolver is None:
        resolver = _worker_resolvers[root] = factory(Path(root))
    return [_convert(_worker_renderer, resolver, request) for request in requests]


def _convert(renderer: Renderer, resolver: ImageResolver, request: Request) -> Conversion:
    text, inline, md_path = request
    resolved: list[tuple[str, str]] = []
    resolve = None
    if md_path is not None:
        where = Path(md_path)

        def resolve(src: str) -> str:
            name = resolver.resolve(where, src)
            resolved.append((src, name))
            return name

    html, _, errors = renderer.convert(text, resolve, inline=inline)
    problems = tuple((src, str(exc), exc.hint, exc.rule) for src, exc in errors)
    return Conversion(html, tuple(resolved), problems)


def may_reference_images(text: str) -> bool:
    """Only ``![`` makes an <img> element, so only such Markdown can have an image problem."""
    return "![" in text


def _may_have_images(note: Note) -> bool:
    parts = (note.prompt, note.answer.text, note.extra.text if note.extra else "")
    return any(may_reference_images(text) for text in parts)


def lint_batch(notes: Sequence[Note], config: LintConfig) -> list[list[Diagnostic]]:
    """Per-note lint findings of a batch of notes (runs in a worker)."""
    return [note_findings(note, config) for note in notes]


def _same_images(images: Sequence[tuple[str, str]], resolve: Callable[[str], str]) -> bool:
    """Resolve the images again here: True when every one still gets the same media name."""
    try:
        return all(resolve(src) == name for src, name in images)
    except MediaError:
        return False


class _CacheView:
    """What both stand-ins for a Renderer share: the cache key of a conversion and what is known of it."""

    def __init__(self, caches: Caches, known: dict[bytes, Conversion], problems_only: bool) -> None:
        self.cache = caches.render
        self.known = known
        self.problems_only = problems_only
        self.keys: list[bytes] = []

    def _skip(self, text: str) -> bool:
        """A check-only run needs no conversion of Markdown that cannot reference an image."""
        return self.problems_only and not may_reference_images(text)

    def _key(self, text: str, inline: bool, resolve: Callable[[str], str] | None) -> bytes:
        key = self.cache.key(text, inline, resolve is not None)
        self.keys.append(key)
        return key


class _Probe(_CacheView):
    """Stands in for a Renderer: answers from known conversions and notes down what is missing."""

    def __init__(self, caches: Caches, known: dict[bytes, Conversion], problems_only: bool) -> None:
        super().__init__(caches, known, problems_only)
        self.missing: dict[bytes, Request] = {}
        self.md_path: str | None = None
        self.complete = True

    def convert(
        self, text: str, resolve: Callable[[str], str] | None = None, *, inline: bool = False
    ) -> tuple[str, list[str], list[tuple[str, MediaError]]]:
        if self._skip(text):
            return "", [], []
        key = self._key(text, inline, resolve)
        conversion = self.known.get(key)
        if conversion is None and key not in self.missing:
            conversion = self.cache.get(key)
        if conversion is not None and resolve is not None and not _same_images(conversion.resolved, resolve):
            self.cache.forget(key)
            self.known.pop(key, None)
            conversion = None
        if conversion is None:
            self.complete = False
            self.missing.setdefault(key, (text, inline, self.md_path if resolve is not None else None))
            return "", [], []
        self.known[key] = conversion
        return conversion.html, conversion.media, []


class _Replay(_CacheView):
    """Stands in for a Renderer once every conversion is known; renders itself only if an image changed meanwhile."""

    def __init__(self, caches: Caches, known: dict[bytes, Conversion], problems_only: bool) -> None:
        super().__init__(caches, known, problems_only)
        self._renderer: Renderer | None = None

    def convert(
        self, text: str, resolve: Callable[[str], str] | None = None, *, inline: bool = False
    ) -> tuple[str, list[str], list[tuple[str, MediaError]]]:
        if self._skip(text):
            return "", [], []
        key = self._key(text, inline, resolve)
        conversion = self.known.get(key)
        if conversion is None or (resolve is not None and not _same_images(conversion.resolved, resolve)):
            if self._renderer is None:
                self._renderer = Renderer()
            return self._renderer.convert(text, resolve, inline=inline)
        errors = [(src, MediaError(message, hint, rule)) for src, message, hint, rule in conversion.errors]
        return conversion.html, conversion.media, errors


class _ImageLog:
    """``MediaStore.resolve`` that also notes every (src, media name) a note resolved."""

    def __init__(self, media: ImageResolver) -> None:
        self.media = media
        self.seen: list[tuple[str, str]] = []

    def resolve(self, md_path: Path, src: str) -> str:
        name = self.media.resolve(md_path, src)
        self.seen.append((src, name))
        return name


class RenderStage:
    """Lint and render one deck: from the caches, in worker processes, or inline.

    ``problems_only`` is for callers that want the diagnostics and not the notes (``deckgen
    check``): only Markdown that can make an image — and so an image problem — is rendered.
    ``files`` (the bytes each category was parsed from) enables the whole-file layer of the cache.
    """

    def __init__(
        self,
        deck: Deck,
        media: ImageResolver,
        media_factory: ResolverFactory,
        caches: Caches,
        *,
        files: Mapping[Path, bytes] | None = None,
        jobs: int | None = None,
        pool: WorkPool | None = None,
        progress: Progress | None = None,
        problems_only: bool = False,
    ) -> None:
        self.deck = deck
        self.media = media
        self.media_factory = media_factory
        self.caches = caches
        self.jobs = available_cores() if jobs is None else max(1, jobs)
        self.progress = progress
        self.problems_only = problems_only
        self.known: dict[bytes, Conversion] = {}
        self.notes = deck.notes()
        self.todo: list[tuple[Category, Note]] = [
            (c, n) for c in deck.categories for n in c.notes if not problems_only or _may_have_images(n)
        ]
        self.done: list[tuple[RenderedNote, list[Diagnostic]] | None] = [None] * len(self.todo)
        self.images: list[list[tuple[str, str]]] = [[] for _ in self.todo]
        self.conversion_keys: list[list[bytes]] = [[] for _ in self.todo]
        self.intro_keys: dict[str, list[bytes]] = {}
        self._file_hits: set[bytes] = set()
        self.lint_found: list[list[Diagnostic] | None] = [None] * len(self.notes)
        self.intros: dict[str, str] = {}
        self.pool = pool if pool is not None else WorkPool(self.jobs, warm_up_worker)
        self._own_pool = pool is None
        self._lint_futures: list[tuple[list[int], Future[list[list[Diagnostic]]]]] = []
        self._render_futures: list[tuple[list[bytes], Future[list[Conversion]]]] = []
        self._units = self._finished = 0
        self._pairs: tuple[list[str], list[tuple[int, int]]] | None = None
        self._lint_keys: dict[int, bytes] = {}
        self._file_keys = self._from_files(files or {})
        if self.caches.lint.store is not None:
            for i, found in enumerate(self.lint_found):
                if found is None:
                    key = self._lint_keys[i] = self.caches.lint.key(self.notes[i])
                    self.lint_found[i] = self.caches.lint.get(key, self.notes[i])
        self._requests = self._probe()
        self._start()

    # --- planning ---------------------------------------------------------------------------

    def _from_files(self, files: Mapping[Path, bytes]) -> dict[str, bytes]:
        """Fill in every note of files unchanged since a cached build; returns each file's key."""
        if tuple(f.name for f in fields(RenderedNote)) != _RENDERED_FIELDS or self.caches.memo.store is None:
            return {}
        salt = config_text(self.deck.config).encode()
        by_id = {nt.id: nt for nt in notetypes.all_notetypes()}
        position = {id(note): i for i, note in enumerate(self.notes)}
        todo_position = {id(note): j for j, (_, note) in enumerate(self.todo)}
        keys: dict[str, bytes] = {}
        for category in self.deck.categories:
            path = category.location.path
            if path not in files:
                continue
            key = keys[path.as_posix()] = self.caches.memo.key(b"file", salt, path.as_posix().encode(), files[path])
            entry = self.caches.memo.get(key)
            if entry is None:
                continue
            try:
                restored = self._restore(category, entry, by_id, todo_position)
            except (ValueError, TypeError, KeyError, IndexError):
                restored = None
            if restored is None:
                continue
            self._file_hits.add(key)
            (intro, intro_keys), lint, rendered = restored
            touched = list(intro_keys)
            for note, (found, lint_key) in zip(category.notes, lint, strict=True):
                self.lint_found[position[id(note)]] = found
                self._lint_keys[position[id(note)]] = lint_key
            for j, result, images, conversion_keys in rendered:
                self.done[j], self.images[j], self.conversion_keys[j] = result, images, conversion_keys
                touched += conversion_keys
            if intro is not None:
                self.intros[self.deck.subdeck_name(category)] = intro
                self.intro_keys[self.deck.subdeck_name(category)] = intro_keys
            # keep the finer entries of these notes alive, for when the file changes again
            self.caches.render.keep(touched)
            self.caches.lint.keep([k for _, k in lint])
        return keys

    def _restore(
        self, category: Category, entry: Any, by_id: Mapping[int, notetypes.NoteType], todo_position: Mapping[int, int]
    ) -> Any:
        """(intro, [(findings, lint key)], [(todo index, result, images, conversion keys)]) or None."""
        (intro, intro_keys), per_note = entry
        if len(per_note) != len(category.notes) or (not self.problems_only and intro is None and category.intro):
            return None
        lint = []
        rendered: list[Any] = []
        for note, (found, stored, images, lint_key, conversion_keys) in zip(category.notes, per_note, strict=True):
            lint.append(([_diagnostic(item, note) for item in found] if found else [], lint_key))
            j = todo_position.get(id(note))
            if j is None:
                continue
            path = note.location.path
            if images and not _same_images(images, lambda src, path=path: self.media.resolve(path, src)):  # type: ignore[misc]
                return None
            deck, notetype_id, values, tags, ords, media = stored
            rn = RenderedNote(note, deck, by_id[notetype_id], values, tags, ords, media)
            rendered.append((j, (rn, []), list(images), conversion_keys))
        return (intro, intro_keys), lint, rendered

    def _probe(self) -> dict[bytes, Request]:
        """Render every remaining note from the conversion cache; notes with a missing conversion are redone later."""
        probe = _Probe(self.caches, self.known, self.problems_only)
        for j, (category, note) in enumerate(self.todo):
            if self.done[j] is not None:
                continue
            probe.md_path, probe.complete, probe.keys = str(note.location.path), True, []
            log = _ImageLog(self.media)
            result = render_note(probe, self.deck, category, note, log.resolve)  # type: ignore[arg-type]
            if probe.complete:
                self.done[j], self.images[j], self.conversion_keys[j] = result, log.seen, probe.keys
        if not self.problems_only:
            probe.md_path = None
            for category in self.deck.categories:
                if self.deck.subdeck_name(category) not in self.intros:
                    render_intro(probe, category)  # type: ignore[arg-type]
        return probe.missing

    def _start(self) -> None:
        lint_missing = [i for i, found in enumerate(self.lint_found) if found is None]
        requests = list(self._requests.items())
        self._units = len(lint_missing) + len(requests)
        seconds = len(requests) * RENDER_SECONDS + len(lint_missing) * LINT_SECONDS
        if self.pool.jobs < 2 or (seconds < POOL_MIN_SECONDS and not self.pool.started):
            return
        # Lint first: its results are needed first (check runs before notes are assembled).
        config = self.deck.config.lint
        for batch in _batches(lint_missing, self.pool.jobs):
            linted = self.pool.submit(lint_batch, [self.notes[i] for i in batch], config)
            self._lint_futures.append((batch, linted))
        root = str(self.deck.root)
        for items in _batches(requests, self.pool.jobs):
            converted = self.pool.submit(convert_batch, self.media_factory, root, [r for _, r in items])
            self._render_futures.append(([k for k, _ in items], converted))
        self._requests = {}  # every one is with a worker now

    def _advance(self, n: int) -> None:
        self._finished += n
        if self.progress is not None and n:
            self.progress(self._finished, self._units)

    # --- results ----------------------------------------------------------------------------

    def note_findings(self, notes: Sequence[Note], config: LintConfig) -> list[list[Diagnostic]]:
        """Per-note lint findings for ``check_deck``, from the caches, the workers or computed here."""
        if len(notes) != len(self.notes) or any(a is not b for a, b in zip(notes, self.notes, strict=True)):
            return lint_batch(notes, config)
        if self._lint_futures:  # workers are linting: meanwhile, compare the prompts here
            self.duplicate_pairs([n.prompt for n in self.notes])
        for batch, future in self._lint_futures:
            for i, found in zip(batch, future.result(), strict=True):
                self.lint_found[i] = found
                self._remember_lint(i, found)
            self._advance(len(batch))
        self._lint_futures = []
        out: list[list[Diagnostic]] = []
        for i, note in enumerate(self.notes):
            cached = self.lint_found[i]
            if cached is None:
                cached = self.lint_found[i] = note_findings(note, config)
                self._remember_lint(i, cached)
                self._advance(1)
            out.append(cached)
        return out

    def _remember_lint(self, i: int, found: list[Diagnostic]) -> None:
        key = self._lint_keys.get(i)
        if key is not None:
            self.caches.lint.put(key, self.notes[i], found)

    def duplicate_pairs(self, prompts: Sequence[str]) -> list[tuple[int, int]]:
        """``check.duplicate_pairs``, remembered for an unchanged list of prompts."""
        if self._pairs is not None and self._pairs[0] == prompts:
            return self._pairs[1]
        key = self.caches.memo.key(b"duplicates", *(p.encode("utf-8", "surrogatepass") for p in prompts))
        cached = self.caches.memo.get(key)
        if isinstance(cached, list) and all(isinstance(p, tuple) and len(p) == 2 for p in cached):
            pairs = [(int(i), int(j)) for i, j in cached]
        else:
            pairs = duplicate_pairs(prompts)
            self.caches.memo.put(key, pairs)
        self._pairs = (list(prompts), pairs)
        return pairs

    def _collect(self) -> None:
        """Every missing conversion, from the workers or rendered here."""
        for keys, future in self._render_futures:
            for key, conversion in zip(keys, future.result(), strict=True):
                self._learn(key, conversion)
            self._advance(len(keys))
        self._render_futures = []
        left = [(k, r) for k, r in self._requests.items() if k not in self.known]
        if left:
            renderer = Renderer()
            resolver = self.media_factory(self.deck.root)
            for key, request in left:
                self._learn(key, _convert(renderer, resolver, request))
                self._advance(1)

    def _learn(self, key: bytes, conversion: Conversion) -> None:
        self.known[key] = conversion
        self.caches.render.put(key, conversion)

    def rendered(self) -> tuple[list[RenderedNote], dict[str, str], list[Diagnostic]]:
        """Rendered notes in deck order, category intros, and image problems in note order."""
        self._collect()
        replay = _Replay(self.caches, self.known, self.problems_only)
        notes: list[RenderedNote] = []
        problems: list[Diagnostic] = []
        for j, (category, note) in enumerate(self.todo):
            result = self.done[j]
            if result is None:
                log, replay.keys = _ImageLog(self.media), []
                result = self.done[j] = render_note(replay, self.deck, category, note, log.resolve)  # type: ignore[arg-type]
                self.images[j], self.conversion_keys[j] = log.seen, replay.keys
            notes.append(result[0])
            problems += result[1]
        if not self.problems_only:
            for category in self.deck.categories:
                name = self.deck.subdeck_name(category)
                if name not in self.intros:
                    replay.keys = []
                    self.intros[name] = render_intro(replay, category)  # type: ignore[arg-type]
                    self.intro_keys[name] = replay.keys
        return notes, dict(self.intros), problems

    def save(self) -> None:
        """Write what this build learnt to the caches (best effort; never changes the build)."""
        memo = self.caches.memo.store
        if memo is not None and memo.writable and not self.problems_only and all(d is not None for d in self.done):
            self._save_files()
        self.caches.flush()

    def _save_files(self) -> None:
        j = 0
        position = {id(note): i for i, note in enumerate(self.notes)}
        for category in self.deck.categories:
            per_note = []
            clean = True
            for note in category.notes:
                result, found = self.done[j], self.lint_found[position[id(note)]]
                assert result is not None
                clean = clean and not result[1] and found is not None
                rn = result[0]
                stored = (rn.deck, rn.notetype.id, rn.fields, rn.tags, rn.card_ords, rn.media)
                lint_key = self._lint_keys.get(position[id(note)], b"")
                found_plain = tuple(_plain(d, note) for d in found or ())
                per_note.append((found_plain, stored, tuple(self.images[j]), lint_key, tuple(self.conversion_keys[j])))
                j += 1
            key = self._file_keys.get(category.location.path.as_posix())
            if key is not None and clean and key not in self._file_hits:
                name = self.deck.subdeck_name(category)
                intro = (self.intros.get(name), tuple(self.intro_keys.get(name, ())))
                self.caches.memo.put(key, (intro, tuple(per_note)))

    def close(self) -> None:
        if self._own_pool:
            self.pool.close()

    def __enter__(self) -> RenderStage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _plain(d: Diagnostic, note: Note) -> tuple[str | None, int, int, str, str, str, str]:
    """A finding as plain values (its path left out when it is the note's own file)."""
    path = None if d.location.path == note.location.path else str(d.location.path)
    return (path, d.location.line, d.location.col, d.rule, d.message, d.hint, d.severity.value)


def _diagnostic(item: Sequence[Any], note: Note) -> Diagnostic:
    path, line, col, rule, message, hint, severity = item
    location = SourceLocation(note.location.path if path is None else Path(path), int(line), int(col))
    return Diagnostic(location, str(rule), str(message), str(hint), Severity(severity))


def _batches(items: list[T], jobs: int) -> Iterator[list[T]]:
    """About eight batches per worker (so a slow batch does not leave cores idle), 8–256 items each."""
    size = min(256, max(8, math.ceil(len(items) / (jobs * 8))))
    for start in range(0, len(items), size):
        yield items[start : start + size]
