"""The render stage of a build, cache first: each file's lint findings and each note's render, from the
cache (or from the prefetch workers, ``prefetch.py``); the rest computed by ``renderwork.py`` — in worker
processes when there is enough of it. (Each file's parse is remembered by ``parsememo.py``.)

The stage, as ``pipeline.py`` drives it:

    stage = RenderStage(deck, ...)   # key every note; restore what is cached; send the rest to workers
    stage.note_findings(notes, cfg)  # each note's lint findings, for check_deck
    stage.duplicate_pairs(prompts)   # near-duplicate prompts, from the stored graph and the changed prompts
    stage.rendered()                 # every render, the safety net applied, and the subdeck intros
    stage.save()                     # what this build computed, to the cache

Rendering a note and linting it are pure functions of the note and its subdeck, so ``Cache`` keys
them by a hash of exactly that (line numbers relative to the note's heading, so a note that moves
keeps its render). A file's findings are one entry, under its notes' hashes: a note added, removed or
edited has the file's notes linted again (~75 us each), their renders still cached. Images are
resolved again for every cached note, so a changed or deleted image is never hidden by the cache, and
every cached render passes the safety net again (a cache entry is never trusted).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import replace
from typing import Any, TypeVar

from deckgen.build.cache import Cache, config_text
from deckgen.build.parallel import WorkPool, collect_cycles
from deckgen.build.plain import diagnostics_from, diagnostics_plain, note_digest
from deckgen.build.prefetch import Prefetch, remember
from deckgen.build.renderwork import (
    ImageResolver,
    Netted,
    Rendered,
    ResolverFactory,
    Sent,
    from_render_value,
    may_render_problems,
    process_batch,
    render_images,
    render_one,
    render_value,
    safety_net,
)
from deckgen.errors import Diagnostic
from deckgen.render.markdown import MediaError, RenderedNote, Renderer, render_intro, safe_html
from deckgen.sources.check import note_findings
from deckgen.sources.duplicates import DuplicateGraph, first_duplicates, normal_prompt
from deckgen.sources.markup import may_hold_unsafe_math
from deckgen.sources.model import Category, Deck, LintConfig, Note

# Rough serial cost of one note (render and lint) on one core; a pool pays off above ~0.4 s of work.
NOTE_SECONDS = 1e-3
POOL_MIN_SECONDS = 0.4
# The safety net over one cached render costs ~40 us: in workers (batches of NET_BATCH) from ~0.15 s of it.
NET_SECONDS = 40e-6
NET_POOL_MIN_SECONDS = 0.15
NET_BATCH = 250
# Linting one note costs ~75 us: a file's notes go to the workers from ~0.1 s of it.
LINT_SECONDS = 75e-6
LINT_POOL_MIN_SECONDS = 0.1
# Up to ~10 ms of it, the notes a worker is still rendering are linted here rather than waited for.
LINT_HERE_SECONDS = 0.01

Progress = Callable[[int, int], None]
T = TypeVar("T")
# A note's lint findings (None until linted), and its render if asked.
Processed = tuple[list[Diagnostic] | None, Rendered | None]


class RenderStage:
    """Lint and render one deck, cache first: a note's findings and its render are kept under its digest
    (``note_digest``, or ``digest``: the parse memo's) and everything around it that decides them.
    ``problems_only`` (``deckgen check``) renders only the notes that can report a rendering problem."""

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
        digest: Callable[[Note], bytes] = note_digest,
        prefetch: Prefetch | None = None,
    ) -> None:
        self.deck, self.media, self.factory, self.cache, self.pool = deck, media, media_factory, cache, pool
        self.prefetch = prefetch if prefetch is not None and not problems_only else Prefetch()
        self.progress, self.problems_only = progress, problems_only
        self._pairs = pairs = [(c, n) for c in deck.categories for n in c.notes]
        self.notes = [n for _, n in pairs]
        self.wanted = [not problems_only or may_render_problems(n) for n in self.notes]  # to render
        self.render_keys, self.files = _keys(deck, pairs, self.wanted, cache, digest)
        # Renders the prefetch workers are reading (and netting) are taken from them (``_take_prefetched``).
        self.pending: dict[bytes, list[int]] = {}
        for i, (key, want) in enumerate(zip(self.render_keys, self.wanted, strict=True)):
            if want and key in self.prefetch.keys:
                self.pending.setdefault(key, []).append(i)
        wanted = [k for k, _ in self.files]
        wanted += [k for k, want in zip(self.render_keys, self.wanted, strict=True) if want and k not in self.pending]
        known = cache.get_many(wanted)
        self._jobs: list[tuple[list[int], Future[list[tuple[list[Diagnostic], Sent | None]]]]] = []
        self._nets: list[tuple[list[int], Future[Netted]]] = []
        self.hashes: dict[int, tuple[tuple[str, ...], bytes]] = {}  # KnownHashes, for the lock
        self._own_renderer: Renderer | None = None
        self.done: list[Processed | None] = []
        self._lint_misses: list[int] = []  # files whose findings the cache lacks (``_finish`` keeps them)
        self.unlinted: list[int] = []  # their notes restored from the cache, to be linted
        self._restore_all(known)
        self.todo = [i for i, d in enumerate(self.done) if d is None]  # computed by this build
        self._count = len(self.notes) - len(self.todo)

    def note_findings(self, notes: Sequence[Note], config: LintConfig) -> list[list[Diagnostic]]:
        """Per-note lint findings for ``check_deck``: cached, from the workers, or computed here."""
        if len(notes) != len(self.notes) or any(a is not b for a, b in zip(notes, self.notes, strict=True)):
            return [note_findings(note, config) for note in notes]
        running = sum(len(batch) for batch, job in self._jobs if not job.done())
        if not running or running * LINT_SECONDS > LINT_HERE_SECONDS:
            self._finish()
            return [done[0] or [] if done else [] for done in self.done]
        # A few notes a worker is still rendering (a worker imports the converter first): linted here.
        self._finish(wait=False)
        here = {i: note_findings(self.notes[i], config) for batch, _ in self._jobs for i in batch}
        return [here[i] if i in here else done[0] or [] if done else [] for i, done in enumerate(self.done)]

    def duplicate_pairs(self, prompts: Sequence[str]) -> list[tuple[int, int]]:
        """The rule's (note, earlier note) pairs, from the stored graph updated with changed prompts."""
        key = self.cache.key("duplicates")
        stored = DuplicateGraph.from_json(self.cache.get(key))
        keys = [normal_prompt(p) for p in prompts]
        graph = stored.update(keys) if stored is not None else DuplicateGraph.build(keys)
        if stored is None or graph.keys != stored.keys:
            self.cache.put(key, graph.to_json())
        return first_duplicates(prompts, graph, keys)

    def rendered(self) -> tuple[list[RenderedNote], dict[str, str], list[Diagnostic]]:
        """Rendered notes in deck order (those rendered), subdeck intros, and rendering problems."""
        self._finish()
        self._take_prefetched()
        self._landed()
        notes: list[RenderedNote] = []
        problems: list[Diagnostic] = []
        for done in self.done:
            if done is not None and done[1] is not None:
                notes.append(done[1][0])
                problems += done[1][1]
        return notes, ({} if self.problems_only else self._intros()), problems

    def save(self) -> None:
        """Write what this build computed to the cache (best effort; never changes the build), and the
        keys of its cached renders for the next build's prefetch."""
        if not self.problems_only:
            kept = [self.render_keys[i] for i, d in enumerate(self.done) if d and d[1] is not None and not d[1][1]]
            remember(self.cache, kept)
        self.cache.save()

    def _restore_all(self, known: Mapping[bytes, Any]) -> None:
        """Restore what the cache holds (the safety net over it in batches, in workers for a big deck)
        and give the rest to the workers when there is enough work for them: the notes the cache does
        not hold first, so that a worker imports the converter and renders them meanwhile."""
        pool, n = self.pool, len(self.notes) - sum(map(len, self.pending.values()))
        parallel_net = pool.jobs > 1 and not self.problems_only and n * NET_SECONDS >= NET_POOL_MIN_SECONDS
        lints: list[list[Diagnostic] | None] = []  # each note's cached findings
        for f, (key, indexes) in enumerate(self.files):
            found = self._file_findings(known.get(key), indexes)
            lints += found or [None] * len(indexes)
            if found is None:
                self._lint_misses.append(f)
        keys = list(zip(lints, self.render_keys, self.wanted, strict=True))
        first = [i for i, (_, rk, want) in enumerate(keys) if want and rk not in known and rk not in self.pending]
        pooled = pool.jobs > 1 and (pool.started or parallel_net or len(first) * NOTE_SECONDS >= POOL_MIN_SECONDS)
        submitted = set(first) if pooled else set()
        self._submit(first if pooled else [])
        restored: list[int] = []  # cached renders the safety net has yet to see
        for i, ((lint, rk, want), note) in enumerate(zip(keys, self.notes, strict=True)):
            if want and rk in self.pending:
                self.done.append((lint, None))  # its render comes from the prefetch
                continue
            self.done.append(None if i in submitted else self._restore(lint, known.get(rk), note, want))
            if self.done[-1] is not None and self.done[-1][1] is not None:
                restored.append(i)
                if len(restored) >= NET_BATCH:
                    self._net(restored, parallel_net)
                    restored = []
        self._net(restored, parallel_net)
        rest = [i for i, d in enumerate(self.done) if d is None and i not in submitted]
        if pooled or (pool.jobs > 1 and len(rest) * NOTE_SECONDS >= POOL_MIN_SECONDS):
            self._submit(rest)
        # Notes of a file whose findings the cache lacks, with their render restored: linted only.
        self.unlinted = [i for i, d in enumerate(self.done) if d is not None and d[0] is None]
        if pooled and len(self.unlinted) * LINT_SECONDS >= LINT_POOL_MIN_SECONDS:
            self._submit(self.unlinted, render=False)

    def _file_findings(self, value: Any, indexes: range) -> list[list[Diagnostic] | None] | None:
        """The findings of a file's notes as ``_finish`` kept them (lines from each note's heading), or
        None if ``value`` is not that."""
        if type(value) is not list or len(value) != len(indexes):
            return None
        out: list[list[Diagnostic] | None] = []
        for i, plain in zip(indexes, value, strict=True):
            if type(plain) is list and not plain:
                out.append([])  # (most notes have no findings)
                continue
            where = self.notes[i].location
            out.append(diagnostics_from(plain, where.path, where.line))
        return None if any(found is None for found in out) else out

    def _restore(
        self, found: list[Diagnostic] | None, render: Any, note: Note, want: bool, netted: bool = False
    ) -> Processed | None:
        """A cached note (its render only if ``want``ed; its findings None if not cached), if its shape
        is right and its images still resolve to the same files; ``netted``: a prefetch worker netted it."""
        if not want:
            return found, None
        try:
            if self.problems_only:  # a check: a note rendered without problems has none while its images hold
                images = render_images(render)
            else:  # (the safety net comes next: ``_net``)
                rendered, images = from_render_value(note, render)
                if not netted and may_hold_unsafe_math("\x00".join(rendered.fields)):  # (no command spans a NUL)
                    return None  # rendered again from the source, whose math is checked (nh3 cannot see TeX)
            if images and any(self.media.resolve(note.location.path, src) != name for src, name in images):
                return None
        except (MediaError, TypeError, ValueError, KeyError):
            return None
        return found, None if self.problems_only else (rendered, [], images)

    def _net(self, restored: list[int], parallel: bool) -> None:
        """The safety net over these cached renders (a cache entry is never trusted): in a worker while
        this process goes on (``_landed`` applies it before any render leaves), or here."""
        if not restored:
            return
        if parallel:
            self._nets.append((restored, self.pool.submit(safety_net, self._net_items(restored))))
        else:
            self._apply(safety_net(self._net_items(restored)))

    def _net_items(self, restored: list[int]) -> list[tuple[int, int, tuple[str, ...]]]:
        items = []
        for i in restored:
            done = self.done[i]
            assert done is not None and done[1] is not None
            rn = done[1][0]
            items.append((i, rn.notetype.id, rn.fields))
        return items

    def _apply(self, netted: Netted) -> None:
        for i, safe, hashes in netted:
            found, (rn, problems, images) = self.done[i]  # type: ignore[misc]
            if safe is not None:
                rn = replace(rn, fields=safe)
                self.done[i] = (found, (rn, problems, images))
            self._known(rn.fields, hashes)

    def _known(self, fields: tuple[str, ...], hashes: bytes) -> None:
        if len(hashes) == 8 * len(fields):
            self.hashes[id(fields)] = (fields, hashes)

    def _landed(self) -> None:
        """Wait for the safety net's workers and apply what they changed (here, if a worker failed)."""
        while self._nets:  # the last batches first: those no worker has started yet are netted here
            restored, job = self._nets.pop()
            try:
                changed = safety_net(self._net_items(restored)) if job.cancel() else job.result()
            except Exception:  # the worker died or failed: the net runs here
                changed = safety_net(self._net_items(restored))
            self._apply(changed)

    def _submit(self, todo: list[int], *, render: bool = True) -> None:
        """Lint these notes, and render those wanted (if ``render``), in the workers."""
        if not todo:
            return
        # Workers get the deck and subdecks without their notes: pickling all of them into every batch
        # would cost more than the rendering (rendering reads a subdeck's name, tags and kind only).
        deck = replace(self.deck, categories=())
        bare = {id(c): replace(c, notes=()) for c in self.deck.categories}
        config = self.deck.config.lint
        for batch in _batches(todo, self.pool.jobs):
            items = [(bare[id(self._pairs[i][0])], self._pairs[i][1], render and self.wanted[i]) for i in batch]
            self._jobs.append((batch, self.pool.submit(process_batch, deck, self.factory, config, items)))

    def _finish(self, wait: bool = True) -> None:
        """Collect the workers' results (unless ``wait``, only the batches they have finished) and compute
        the rest here."""
        running: list[tuple[list[int], Future[list[tuple[list[Diagnostic], Sent | None]]]]] = []
        self._jobs.reverse()
        while self._jobs:  # each batch's raw results are let go once kept (at 50k notes, ~25 MB)
            batch, job = self._jobs.pop()
            if not wait and not job.done():
                running.append((batch, job))
                continue
            for i, (found, sent) in zip(batch, job.result(), strict=True):
                done = self.done[i]
                if done is not None:  # linted only
                    self.done[i] = (found, done[1])
                else:
                    self._done(i, (found, self._adopt(i, sent) if sent is not None else None))
        self._jobs = running
        elsewhere = {i for batch, _ in running for i in batch}
        config = self.deck.config.lint
        for i in self.unlinted:
            done = self.done[i]
            if done is not None and done[0] is None and i not in elsewhere:
                self.done[i] = (note_findings(self.notes[i], config), done[1])
        for i in self.todo:
            if self.done[i] is None and i not in elsewhere:
                self._done(i, (note_findings(self.notes[i], config), self._render_here(i) if self.wanted[i] else None))
        if running:
            return
        if self.cache.storing:
            for f in self._lint_misses:
                plain = []
                for i in self.files[f][1]:
                    where, done = self.notes[i].location, self.done[i]
                    assert done is not None and done[0] is not None
                    plain.append(diagnostics_plain(done[0], where.path, where.line))
                self.cache.put(self.files[f][0], plain)
        self._lint_misses = []

    def _done(self, i: int, result: Processed) -> None:
        """Note ``i`` is linted (and rendered if wanted): keep it, count it, and give its render to the
        cache now (encoding it while the workers render the rest), unless rendering it had a problem."""
        self.done[i] = result
        self._count += 1
        if self.progress is not None:
            self.progress(self._count, len(self.notes))
        if not self.cache.storing:
            return
        rendered = result[1]
        if rendered is not None and not rendered[1]:
            rn, _, images = rendered
            self.cache.put(self.render_keys[i], render_value(rn, images))

    def _take_prefetched(self) -> None:
        """The renders the prefetch workers read and netted; a note they did not serve is read and netted,
        or rendered, here."""
        left: list[int] = []
        served: list[bytes] = []
        for key, value, hashes in self.prefetch.served():
            for i in self.pending.pop(key, ()):
                found = self.done[i][0]  # type: ignore[index]
                restored = self._restore(found, value, self.notes[i], True, netted=True)
                if restored is not None and restored[1] is not None:
                    self.done[i] = restored
                    self._known(restored[1][0].fields, hashes)
                    served.append(key)
                else:
                    left.append(i)
        self.cache.keep(served)
        left += [i for indexes in self.pending.values() for i in indexes]
        self.pending = {}
        known = self.cache.get_many([self.render_keys[i] for i in left])
        restored_here = []
        for i in left:
            found, note = self.done[i][0], self.notes[i]  # type: ignore[index]
            done = self._restore(found, known.get(self.render_keys[i]), note, True)
            if done is not None:
                self.done[i] = done
                restored_here.append(i)
            else:
                self._count -= 1  # (``_done`` counts it again)
                self._done(i, (found, self._render_here(i)))
        self._net(restored_here, parallel=False)

    def _render_here(self, i: int) -> Rendered:
        """Note ``i`` rendered in this process."""
        category, note = self._pairs[i]
        return render_one(self._renderer(), self.media, self.deck, category, note)

    def _renderer(self) -> Renderer:
        """This process's converter, built on first use (a fully cached build needs none)."""
        if self._own_renderer is None:
            collect_cycles()
            self._own_renderer = Renderer()
        return self._own_renderer

    def _adopt(self, i: int, sent: Sent) -> Rendered:
        """Note ``i`` as a worker rendered it: load its images into this build's media store."""
        value, problems, hashes = sent
        rendered, images = from_render_value(self.notes[i], value)
        self._known(rendered.fields, hashes)
        for src, _name in images:
            self.media.resolve(rendered.note.location.path, src)
        return rendered, problems, images

    def _intros(self) -> dict[str, str]:
        intros: dict[str, str] = {}
        keys = {c.intro: self.cache.key("intro", c.intro) for c in self.deck.categories if c.intro}
        known = self.cache.get_many(list(keys.values()))
        for category in self.deck.categories:
            html = known.get(keys[category.intro]) if category.intro else ""
            if not isinstance(html, str) or may_hold_unsafe_math(html):
                html = render_intro(self._renderer(), category)
                self.cache.put(keys[category.intro], html)
            else:
                html = safe_html(html)  # the safety net: a cache entry is never trusted
            intros[self.deck.subdeck_name(category)] = html
        return intros


def _keys(
    deck: Deck, pairs: list[tuple[Category, Note]], wanted: list[bool], cache: Cache, digest: Callable[[Note], bytes]
) -> tuple[list[bytes], list[tuple[bytes, range]]]:
    """Each note's render key (b"" if not ``wanted``), and each subdeck file's lint key with its notes'
    indexes: a file's findings are one entry (instead of hundreds), under its notes' digests."""
    digests = [digest(n) for _, n in pairs]
    render_key = {id(c): cache.keyer("note", _context(deck, c)) for c in deck.categories}
    render_keys = [
        render_key[id(c)](d) if want else b"" for (c, _), d, want in zip(pairs, digests, wanted, strict=True)
    ]
    lint_key = cache.keyer("lint", config_text(deck.config.lint))
    files: list[tuple[bytes, range]] = []
    start = 0
    for category in deck.categories:
        end = start + len(category.notes)
        files.append((lint_key(b"".join(digests[start:end])), range(start, end)))
        start = end
    return render_keys, files


def _context(deck: Deck, category: Category) -> str:
    """Everything outside a note that its rendered fields depend on."""
    return repr((deck.subdeck_name(category), category.tag, category.tags, category.kind.value))


def _batches(items: list[T], jobs: int) -> Iterator[list[T]]:
    """About eight batches per worker (so a slow batch does not leave cores idle), 8–256 items each."""
    size = min(256, max(8, math.ceil(len(items) / (jobs * 8))))
    for start in range(0, len(items), size):
        yield items[start : start + size]
