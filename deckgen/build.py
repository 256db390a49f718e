"""Drive the pipeline at the I/O edge: read sources → parse → render → lock → package.

Everything here is a plain function the CLI calls; the stages it calls are pure except
``package`` and ``lock`` writing.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from deckgen import notetypes
from deckgen.check import check_deck
from deckgen.config import CONFIG_NAME, load_config
from deckgen.errors import DeckgenError, Diagnostic, LockError, Severity, SourceError
from deckgen.lock import LOCK_NAME, Lock, LockDiff, read_lock, update_lock, write_lock
from deckgen.model import Deck, DeckConfig, SourceLocation
from deckgen.package import PackageDeck, PackagedNote, write_package
from deckgen.parse import parse_deck
from deckgen.render import MediaError, RenderedNote, Renderer, render_intro, render_note

IMAGE_TYPES = {".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp"}


class MediaStore:
    """Resolves image references inside the source tree to flat, content-hashed media names."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.files: dict[str, bytes] = {}
        self._names: dict[Path, str] = {}

    def resolve(self, md_path: Path, src: str) -> str:
        if "\\" in src:
            raise MediaError(
                f"image path {src!r} uses backslashes", "write paths with '/' even on Windows", rule="image-path"
            )
        if src.startswith("/") or re.match(r"^[A-Za-z]:", src) or src.startswith("file:"):
            raise MediaError(
                f"image path {src!r} is absolute",
                "use a path relative to the Markdown file",
                rule="image-outside-source",
            )
        real = (md_path.parent / src).resolve()
        if not real.is_relative_to(self.root):
            raise MediaError(
                f"image {src!r} is outside the source folder",
                "keep images inside the source folder",
                rule="image-outside-source",
            )
        if real in self._names:
            return self._names[real]
        if not real.is_file():
            raise MediaError(f"image not found: {src!r}", f"no file {real}", rule="image-missing")
        if real.suffix.lower() not in IMAGE_TYPES:
            raise MediaError(
                f"unsupported image type {real.suffix!r}", "use PNG, JPEG, GIF, SVG or WebP", rule="image-type"
            )
        try:
            data = real.read_bytes()
        except OSError as exc:
            raise MediaError(f"cannot read image {src!r}: {exc.strerror or exc}", rule="image-missing") from exc
        name = f"dg-{hashlib.sha256(data).hexdigest()[:20]}{real.suffix.lower()}"
        self.files[name] = data
        self._names[real] = name
        return name


@dataclass(frozen=True, slots=True)
class Compiled:
    """A parsed and rendered deck with the lock it would leave behind."""

    deck: Deck
    notes: tuple[RenderedNote, ...]
    intros: Mapping[str, str]
    media: Mapping[str, bytes]
    lock: Lock
    new_lock: Lock
    diff: LockDiff
    diagnostics: tuple[Diagnostic, ...] = ()

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.severity is Severity.ERROR)

    @property
    def warnings(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.severity is Severity.WARNING)


@dataclass(frozen=True, slots=True)
class BuildResult:
    compiled: Compiled
    output: Path
    lock_path: Path
    written: bool
    lock_written: bool
    subdecks: tuple[tuple[str, int, int], ...] = field(default=())


def read_sources(source: Path) -> tuple[DeckConfig, dict[Path, bytes], list[Diagnostic]]:
    """Read ``deckgen.toml`` and every ``*.md`` category file of ``source``.

    Raises SourceError only when nothing can be built at all (no folder, no usable config).
    """
    config_path = source / CONFIG_NAME
    if not source.is_dir():
        raise SourceError.single(SourceLocation(source, 1), "source-missing", f"source folder {source} not found")
    if not config_path.is_file():
        raise SourceError.single(
            SourceLocation(config_path, 1),
            "config-missing",
            f"{CONFIG_NAME} not found",
            'create it with: name = "My Deck"',
        )
    try:
        config_text = config_path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise SourceError.single(SourceLocation(config_path, 1), "unreadable", f"cannot read: {exc.strerror}") from exc
    config, problems = load_config(config_text, config_path)
    if config is None:
        raise SourceError(problems)
    files: dict[Path, bytes] = {}
    for path in sorted(source.glob("*.md")):
        try:
            files[path] = path.read_bytes()
        except OSError as exc:
            problems.append(Diagnostic(SourceLocation(path, 1), "unreadable", f"cannot read file: {exc.strerror}"))
    return config, files, problems


def render_deck(deck: Deck, media: MediaStore) -> tuple[list[RenderedNote], dict[str, str], list[Diagnostic]]:
    """Render every note (in deck order) and every category intro."""
    renderer = Renderer()
    rendered: list[RenderedNote] = []
    problems: list[Diagnostic] = []
    for category in deck.categories:
        for note in category.notes:
            rn, found = render_note(renderer, deck, category, note, media.resolve)
            rendered.append(rn)
            problems += found
    intros = {deck.subdeck_name(c): render_intro(renderer, c) for c in deck.categories}
    return rendered, intros, problems


def compile_deck(source: Path, now: int) -> Compiled:
    """Parse, check and render the deck and compute the lock update, writing nothing.

    Every diagnostic of every stage is collected in ``Compiled.diagnostics``; callers decide
    whether errors are fatal (build) or just reported (check).
    """
    config, files, problems = read_sources(source)
    deck, found = parse_deck(config, source, files)
    problems += found
    problems += check_deck(deck)
    media = MediaStore(source)
    rendered, intros, found = render_deck(deck, media)
    problems += found
    lock = read_lock(source / LOCK_NAME)
    new_lock, diff = update_lock(lock, rendered, notetypes.all_notetypes(), now)
    diagnostics = tuple(sorted(problems, key=Diagnostic.sort_key))
    return Compiled(deck, tuple(rendered), intros, dict(media.files), lock, new_lock, diff, diagnostics)


def package_inputs(
    compiled: Compiled,
) -> tuple[list[PackageDeck], list[PackagedNote], dict[int, tuple[notetypes.NoteType, int]]]:
    deck = compiled.deck
    decks = [PackageDeck(deck.name)] + [
        PackageDeck(deck.subdeck_name(c), compiled.intros.get(deck.subdeck_name(c), ""))
        for c in deck.categories
        if c.notes
    ]
    notes = [
        PackagedNote(rn, compiled.new_lock.notes[rn.note.id].mod, due) for due, rn in enumerate(compiled.notes, start=1)
    ]
    nt_mods = {nt.id: (nt, compiled.new_lock.notetypes[nt.name].mod) for nt in notetypes.all_notetypes()}
    return decks, notes, nt_mods


def load_deck(source: Path) -> tuple[Deck, list[Diagnostic]]:
    """Read and parse the sources only (for authoring commands that need no rendering)."""
    config, files, problems = read_sources(source)
    deck, found = parse_deck(config, source, files)
    return deck, problems + found


def build(
    source: Path, out_dir: Path, *, now: int, locked: bool = False, dry_run: bool = False, strict: bool = False
) -> BuildResult:
    """Build the package. On any error nothing is written and the previous package stays intact.

    ``strict`` treats warnings as errors.
    """
    compiled = compile_deck(source, now)
    fatal = compiled.diagnostics if strict else compiled.errors
    if fatal:
        raise SourceError(fatal)
    lock_path = source / LOCK_NAME
    output = out_dir / compiled.deck.config.output
    lock_changes = compiled.new_lock != compiled.lock
    if locked and lock_changes:
        d = compiled.diff
        raise LockError(
            f"{lock_path} is out of date ({len(d.added)} added, {len(d.changed)} changed, "
            f"{len(d.removed)} removed); run 'deckgen build' without --locked and commit the lock"
        )
    if not dry_run:
        decks, notes, nt_mods = package_inputs(compiled)
        try:
            write_package(output, compiled.deck.name, decks, notes, nt_mods, compiled.media)
        except OSError as exc:
            raise DeckgenError(f"cannot write {output}: {exc.strerror or exc}") from exc
        if lock_changes:
            try:
                write_lock(lock_path, compiled.new_lock)
            except OSError as exc:
                raise DeckgenError(f"wrote {output} but cannot update {lock_path}: {exc.strerror or exc}") from exc
    counts = tuple(
        (
            c.name,
            len(c.notes),
            sum(len(rn.card_ords) for rn in compiled.notes if rn.deck == compiled.deck.subdeck_name(c)),
        )
        for c in compiled.deck.categories
    )
    return BuildResult(compiled, output, lock_path, not dry_run, lock_changes and not dry_run, counts)
