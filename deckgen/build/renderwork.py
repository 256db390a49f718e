"""The render stage's work, as plain functions that run in worker processes or here: lint and render notes
(``process_batch``), pass cached renders through the safety net (``safety_net``), and the plain values a
render travels back from a worker and is cached as (``render_value``). ``incremental.py`` decides what to
compute and where; nothing here reads or writes the cache.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from deckgen.anki import notetypes
from deckgen.build.lock import field_hashes
from deckgen.build.plain import maker
from deckgen.errors import Diagnostic
from deckgen.render.markdown import RenderedNote, Renderer, render_note, safe_fields
from deckgen.sources.check import note_findings
from deckgen.sources.model import Category, Deck, LintConfig, Note


class ImageResolver(Protocol):
    def resolve(self, md_path: Path, src: str) -> str: ...


ResolverFactory = Callable[[Path], ImageResolver]
Rendered = tuple[RenderedNote, list[Diagnostic], list[tuple[str, str]]]  # note, problems, images resolved
# A note rendered in a worker, as it travels back: ``render_value`` (the parent has the note), problems and
# its fields' hashes for the lock.
Sent = tuple[list[Any], list[Diagnostic], bytes]
Netted = list[tuple[int, tuple[str, ...] | None, bytes]]  # (index, fields if changed, their hashes)

_worker: dict[str, Any] = {}  # a worker process's renderer and image resolvers, kept for its life


def warm_up_worker() -> None:
    """Build the worker's Markdown converter as it starts, while the parent is still parsing."""
    _worker.setdefault("renderer", Renderer())


def preload_renderer() -> None:
    """Import the Markdown converter in this process before it forks workers: imported once, shared."""
    import deckgen.render.converter  # noqa: F401


def render_value(rn: RenderedNote, images: list[tuple[str, str]]) -> list[Any]:
    """A rendered note as plain values, without the note itself and with its notetype by id: how the
    cache keeps it and how a worker sends it back."""
    return [rn.deck, rn.notetype.id, rn.fields, rn.tags, rn.card_ords, rn.media, images]


_rendered_note = maker(RenderedNote)  # (a warm build makes one per note)


def from_render_value(note: Note, value: Any) -> tuple[RenderedNote, list[tuple[str, str]]]:
    """``note`` rendered as ``render_value`` wrote it, and its images; raises on a value of another shape."""
    deck, nt, values, tags, ords, media, images = value
    notetype = notetypes.by_id()[nt]
    # Subdeck names and tags repeat across thousands of notes: one copy each (~20 MB at 50k notes).
    deck, tags = sys.intern(deck), tuple(sys.intern(t) for t in tags)
    return _rendered_note(note, deck, notetype, tuple(values), tags, tuple(ords), tuple(media)), _images(images)


def render_images(value: Any) -> list[tuple[str, str]]:
    """Only the images (src as written, media name) of a ``render_value``; raises on another shape."""
    _deck, _nt, _values, _tags, _ords, _media, images = value
    return _images(images)


def _images(images: Any) -> list[tuple[str, str]]:
    if type(images) is list and not images:
        return []  # (most notes)
    return [(str(src), str(name)) for src, name in images]


def process_batch(
    deck: Deck, factory: ResolverFactory, config: LintConfig, items: Sequence[tuple[Category, Note, bool]]
) -> list[tuple[list[Diagnostic], Sent | None]]:
    """Lint notes, and render those marked, in a worker process (images resolved are noted as (src, name))."""
    warm_up_worker()
    media = _worker.get(str(deck.root))
    if media is None:
        media = _worker[str(deck.root)] = factory(deck.root)
    renderer = _worker["renderer"]
    out: list[tuple[list[Diagnostic], Sent | None]] = []
    for category, note, render in items:
        sent: Sent | None = None
        if render:
            rn, problems, images = render_one(renderer, media, deck, category, note)
            sent = (render_value(rn, images), problems, field_hashes(rn.fields))
        out.append((note_findings(note, config), sent))
    return out


def render_one(renderer: Renderer, media: ImageResolver, deck: Deck, category: Category, note: Note) -> Rendered:
    """``note`` rendered, its problems, and the images it resolved."""
    seen: list[tuple[str, str]] = []

    def resolve(path: Path, src: str) -> str:
        name = media.resolve(path, src)
        seen.append((src, name))
        return name

    rendered, problems = render_note(renderer, deck, category, note, resolve)
    return rendered, problems, seen


def safety_net(items: Sequence[tuple[int, int, tuple[str, ...]]]) -> Netted:
    """``safe_fields`` over (index, notetype id, fields) of cached renders: each index with its fields if
    the net changed them (else None), and the hashes of its safe fields for the lock."""
    by_id = notetypes.by_id()
    out: Netted = []
    for i, notetype, fields in items:
        safe = safe_fields(by_id[notetype], fields)
        out.append((i, safe if safe != fields else None, field_hashes(safe)))
    return out


def may_render_problems(note: Note) -> bool:
    """Only media references and raw HTML can make the renderer report a problem."""
    texts = (note.prompt, note.answer.text, note.extra.text if note.extra else "")
    return any("![" in t or "<" in t or "[sound:" in t for t in texts)
