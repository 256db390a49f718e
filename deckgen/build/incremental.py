"""The render and lint stage of a build: each note's results from the cache, the rest computed — in worker
processes when there is enough of it.

Rendering a note and linting it are pure functions of the note and its subdeck, so ``Cache`` keys
them by a hash of exactly that (line numbers relative to the note's heading, so a note that moves
keeps its entries). Images are resolved again for every cached note, so a changed or deleted image
is never hidden by the cache. Duplicate prompts come from the deck's stored ``DuplicateGraph``,
probed only with the prompts that changed.
"""

from __future__ import annotations

import functools
import math
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import fields, replace
from pathlib import Path
from typing import Any, Protocol, TypeVar

from deckgen.anki import notetypes
from deckgen.build.cache import Cache, config_text
from deckgen.build.parallel import WorkPool
from deckgen.errors import Diagnostic, Severity
from deckgen.render.markdown import MediaError, RenderedNote, Renderer, render_intro, render_note
from deckgen.sources.check import note_findings
from deckgen.sources.duplicates import DuplicateGraph, first_duplicates, normal_prompt
from deckgen.sources.model import Body, Category, Deck, LintConfig, Note, SourceLocation

# Rough serial cost of one note (render and lint) on one core; a pool pays off above ~0.4 s of work.
NOTE_SECONDS = 1e-3
POOL_MIN_SECONDS = 0.4

Progress = Callable[[int, int], None]
T = TypeVar("T")


class ImageResolver(Protocol):
    def resolve(self, md_path: Path, src: str) -> str: ...


ResolverFactory = Callable[[Path], ImageResolver]
Rendered = tuple[RenderedNote, list[Diagnostic], list[tuple[str, str]]]  # note, problems, images resolved

_worker: dict[str, Any] = {}  # a worker process's renderer and image resolvers, kept for its life


def warm_up_worker() -> None:
    """Build the worker's Markdown converter as it starts, while the parent is still parsing."""
    _worker.setdefault("renderer", Renderer())


def render_batch(deck: Deck, factory: ResolverFactory, items: Sequence[tuple[Category, Note]]) -> list[Rendered]:
    """Render notes in a worker process, noting each image resolved as (src, media name)."""
    warm_up_worker()
    media = _worker.get(str(deck.root))
    if media is None:
        media = _worker[str(deck.root)] = factory(deck.root)
    return [_render(_worker["renderer"], media, deck, category, note) for category, note in items]


def _render(renderer: Renderer, media: ImageResolver, deck: Deck, category: Category, note: Note) -> Rendered:
    seen: list[tuple[str, str]] = []

    def resolve(path: Path, src: str) -> str:
        name = media.resolve(path, src)
        seen.append((src, name))
        return name

    rendered, problems = render_note(renderer, deck, category, note, resolve)
    return rendered, problems, seen


def lint_batch(notes: Sequence[Note], config: LintConfig) -> list[list[Diagnostic]]:
    return [note_findings(note, config) for note in notes]


@functools.cache
def _notetypes_by_id() -> dict[int, notetypes.NoteType]:
    return {t.id: t for t in notetypes.all_notetypes()}


def may_render_problems(note: Note) -> bool:
    """Only media references and raw HTML can make the renderer report a problem."""
    texts = (note.prompt, note.answer.text, note.extra.text if note.extra else "")
    return any("![" in t or "<" in t or "[sound:" in t for t in texts)


class RenderStage:
    """Lint and render one deck, cache first. ``problems_only`` (``deckgen check``) renders only the
    notes that can report a rendering problem."""

    def __init__(
        self,
        deck: Deck,
        media: ImageResolver,
        media_factory: ResolverFactory,
        cache: Cache,
        *,
        pool: WorkPool,
        progress: Progress | None = None,
        problems_only: bool = False,
    ) -> None:
        self.deck, self.media, self.factory, self.cache, self.pool = deck, media, media_factory, cache, pool
        self.progress, self.problems_only = progress, problems_only
        pairs = [(c, n) for c in deck.categories for n in c.notes]
        self.notes = [n for _, n in pairs]
        self.todo = [(c, n) for c, n in pairs if not problems_only or may_render_problems(n)]
        texts = [_note_text(n) for n in self.notes]
        lint_salt = config_text(deck.config.lint)
        self.lint_keys = [cache.key("lint", lint_salt, t) for t in texts]
        position = {id(n): i for i, n in enumerate(self.notes)}
        self.render_keys = [cache.key("note", _context(deck, c), texts[position[id(n)]]) for c, n in self.todo]
        known = cache.get_many(self.lint_keys + self.render_keys)
        self.found = [_findings(known.get(k), n) for k, n in zip(self.lint_keys, self.notes, strict=True)]
        self.done: list[Rendered | None] = [
            self._restore(known.get(k), c, n) for k, (c, n) in zip(self.render_keys, self.todo, strict=True)
        ]
        self._lint_jobs: list[tuple[list[int], Future[list[list[Diagnostic]]]]] = []
        self._render_jobs: list[tuple[list[int], Future[list[Rendered]]]] = []
        self._new_lint = [i for i, f in enumerate(self.found) if f is None]  # computed by this build
        self._new_render = [j for j, d in enumerate(self.done) if d is None]
        self._total = len(self._new_lint) + len(self._new_render)  # units of work (lint or render a note)
        # Progress counts notes: a note is done once it is linted and rendered (from the cache or now).
        self._todo_note = [position[id(n)] for _, n in self.todo]
        self._pending = Counter(self._new_lint + [self._todo_note[j] for j in self._new_render])
        self._notes_done = len(self.notes) - len(self._pending)
        self._own_renderer: Renderer | None = None
        if pool.jobs > 1 and (pool.started or self._total * NOTE_SECONDS >= POOL_MIN_SECONDS):
            self._submit()

    def _restore(self, value: Any, category: Category, note: Note) -> Rendered | None:
        """A cached note, if its shape is right and its images still resolve to the same files."""
        try:
            deck, nt, values, tags, ords, media, images = value
            notetype = _notetypes_by_id()[nt]
            images = [(str(src), str(name)) for src, name in images]
            if any(self.media.resolve(note.location.path, src) != name for src, name in images):
                return None
            rendered = RenderedNote(note, deck, notetype, tuple(values), tuple(tags), tuple(ords), tuple(media))
        except (MediaError, TypeError, ValueError, KeyError):
            return None
        return rendered, [], images

    def _submit(self) -> None:
        config = self.deck.config.lint
        for batch in _batches(self._new_lint, self.pool.jobs):
            self._lint_jobs.append((batch, self.pool.submit(lint_batch, [self.notes[i] for i in batch], config)))
        # Workers get the deck and subdecks without their notes: pickling all of them into every batch
        # would cost more than the rendering (rendering reads a subdeck's name, tags and kind only).
        deck = replace(self.deck, categories=())
        bare = {id(c): replace(c, notes=()) for c in self.deck.categories}
        for batch in _batches(self._new_render, self.pool.jobs):
            items = [(bare[id(c)], n) for c, n in (self.todo[j] for j in batch)]
            self._render_jobs.append((batch, self.pool.submit(render_batch, deck, self.factory, items)))

    def _advance(self, note: int) -> None:
        """One unit of note ``note`` (a position in ``self.notes``) is done; report finished notes."""
        self._pending[note] -= 1
        if self._pending[note] == 0:
            del self._pending[note]
            self._notes_done += 1
            if self.progress is not None:
                self.progress(self._notes_done, len(self.notes))

    def note_findings(self, notes: Sequence[Note], config: LintConfig) -> list[list[Diagnostic]]:
        """Per-note lint findings for ``check_deck``: cached, from the workers, or computed here."""
        if len(notes) != len(self.notes) or any(a is not b for a, b in zip(notes, self.notes, strict=True)):
            return lint_batch(notes, config)
        for batch, job in self._lint_jobs:
            for i, found in zip(batch, job.result(), strict=True):
                self.found[i] = found
                self._advance(i)
        self._lint_jobs = []
        out = []
        for i, note in enumerate(self.notes):
            if self.found[i] is None:
                self.found[i] = note_findings(note, config)
                self._advance(i)
            out.append(self.found[i] or [])
        return out

    def duplicate_pairs(self, prompts: Sequence[str]) -> list[tuple[int, int]]:
        """The rule's (note, earlier note) pairs, from the stored graph updated with changed prompts."""
        key = self.cache.key("duplicates")
        stored = DuplicateGraph.from_json(self.cache.get(key))
        keys = [normal_prompt(p) for p in prompts]
        graph = stored.update(keys) if stored is not None else DuplicateGraph.build(keys)
        if stored is None or graph.keys != stored.keys:
            self.cache.put(key, graph.to_json())
        return first_duplicates(prompts, graph)

    def rendered(self) -> tuple[list[RenderedNote], dict[str, str], list[Diagnostic]]:
        """Rendered notes in deck order, subdeck intros, and rendering problems."""
        for batch, job in self._render_jobs:
            for j, result in zip(batch, job.result(), strict=True):
                self.done[j] = self._adopt(result)
                self._advance(self._todo_note[j])
        self._render_jobs = []
        for j, done in enumerate(self.done):
            if done is None:
                category, note = self.todo[j]
                self.done[j] = _render(self._renderer(), self.media, self.deck, category, note)
                self._advance(self._todo_note[j])
        notes: list[RenderedNote] = []
        problems: list[Diagnostic] = []
        for done in self.done:
            assert done is not None
            notes.append(done[0])
            problems += done[1]
        return notes, ({} if self.problems_only else self._intros()), problems

    def _renderer(self) -> Renderer:
        """This process's converter, built on first use (a fully cached build needs none)."""
        if self._own_renderer is None:
            self._own_renderer = Renderer()
        return self._own_renderer

    def _adopt(self, result: Rendered) -> Rendered:
        """A result rendered elsewhere: load its images into this build's media store."""
        rendered, _, images = result
        for src, _name in images:
            self.media.resolve(rendered.note.location.path, src)
        return result

    def _intros(self) -> dict[str, str]:
        intros: dict[str, str] = {}
        keys = {c.intro: self.cache.key("intro", c.intro) for c in self.deck.categories if c.intro}
        known = self.cache.get_many(list(keys.values()))
        for category in self.deck.categories:
            html = known.get(keys[category.intro]) if category.intro else ""
            if not isinstance(html, str):
                html = render_intro(self._renderer(), category)
                self.cache.put(keys[category.intro], html)
            intros[self.deck.subdeck_name(category)] = html
        return intros

    def save(self) -> None:
        """Remember this build's results (best effort; never changes the build)."""
        for i in self._new_lint:
            found, note = self.found[i], self.notes[i]
            if found is not None:
                self.cache.put(self.lint_keys[i], [_plain(d, note) for d in found])
        for j in self._new_render:
            done = self.done[j]
            if done is not None and not done[1]:
                rn, _, images = done
                value = [rn.deck, rn.notetype.id, rn.fields, rn.tags, rn.card_ords, rn.media, images]
                self.cache.put(self.render_keys[j], value)
        self.cache.save()


def _context(deck: Deck, category: Category) -> str:
    """Everything outside a note that its rendered fields depend on."""
    return repr((deck.subdeck_name(category), category.tag, category.tags, category.kind.value))


def _note_text(note: Note) -> str:
    """The note with every line number made relative to its heading, each field length-prefixed."""
    base = note.location.line
    out = [type(note).__name__]
    for name in _field_names(type(note)):
        value = getattr(note, name)
        if type(value) is str:
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


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _field_names(cls: type) -> tuple[str, ...]:
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in fields(cls))
    return names


def _plain(d: Diagnostic, note: Note) -> list[object]:
    """A finding as JSON values, its line relative to the note's heading (None: another file's path)."""
    same = d.location.path == note.location.path
    line = d.location.line - note.location.line if same else d.location.line
    path = None if same else d.location.path.as_posix()
    return [path, line, d.location.col, d.rule, d.message, d.hint, d.severity.value]


def _findings(value: Any, note: Note) -> list[Diagnostic] | None:
    if not isinstance(value, list):
        return None
    try:
        out = []
        for path, line, col, rule, message, hint, severity in value:
            where = note.location.path if path is None else Path(str(path))
            line = note.location.line + int(line) if path is None else int(line)
            out.append(
                Diagnostic(
                    SourceLocation(where, line, int(col)), str(rule), str(message), str(hint), Severity(severity)
                )
            )
    except (TypeError, ValueError):
        return None
    return out


def _batches(items: list[T], jobs: int) -> Iterator[list[T]]:
    """About eight batches per worker (so a slow batch does not leave cores idle), 8–256 items each."""
    size = min(256, max(8, math.ceil(len(items) / (jobs * 8))))
    for start in range(0, len(items), size):
        yield items[start : start + size]
