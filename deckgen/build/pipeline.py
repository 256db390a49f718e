"""Drive the pipeline at the I/O edge: read sources → parse → render → lock → package.

Everything here is a plain function the CLI calls; the stages it calls are pure except
``package`` and ``lock`` writing.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import re
import shutil
import sqlite3
import stat
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from deckgen.anki import notetypes
from deckgen.anki.package import PackageDeck, PackagedNote, load_writer, write_package
from deckgen.build import timings
from deckgen.build.cache import CACHE_DIR, cache_file, open_cache
from deckgen.build.exclusive import exclusive
from deckgen.build.hazards import hazard_diagnostics
from deckgen.build.incremental import Progress, RenderStage
from deckgen.build.lock import (
    LOCK_NAME,
    KnownHashes,
    Lock,
    LockDiff,
    foreign_lock,
    lock_findings,
    read_lock,
    read_regular,
    update_lock,
    write_lock,
)
from deckgen.build.parallel import WorkPool, available_cores, no_cycle_collection, release_free_memory
from deckgen.build.parsememo import ParseMemo
from deckgen.build.prefetch import Prefetch
from deckgen.build.renderwork import preload_renderer, warm_up_worker
from deckgen.errors import DeckgenError, Diagnostic, LockError, Severity, SourceError
from deckgen.render.markdown import AUDIO_TYPES, MediaError, RenderedNote, Renderer
from deckgen.sources.check import RULES, check_deck
from deckgen.sources.config import CONFIG_NAME, load_config
from deckgen.sources.model import Deck, DeckConfig, SourceLocation
from deckgen.sources.parse import FOLDER_FILE, decode, parse_deck

T = TypeVar("T")
IMAGE_TYPES = {".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp"}


class MediaStore:
    """Resolves image and sound references inside the source tree to flat, content-hashed media names."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.files: dict[str, bytes] = {}
        self._names: dict[Path, str] = {}
        self._refs: dict[tuple[Path, str], str] = {}  # (folder, as written) -> name, skipping path resolution

    def resolve(self, md_path: Path, src: str) -> str:
        ref = (md_path.parent, src)
        known = self._refs.get(ref)
        if known is not None:
            return known
        name = self._refs[ref] = self._resolve(md_path, src)
        return name

    def _resolve(self, md_path: Path, src: str) -> str:
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
                f"{_what(src)} {src!r} is outside the source folder",
                "keep images and sounds inside the source folder",
                rule="image-outside-source",
            )
        if real in self._names:
            return self._names[real]
        if not real.is_file():
            raise MediaError(f"{_what(src)} not found: {src!r}", f"no file {real}", rule="image-missing")
        if real.suffix.lower() not in IMAGE_TYPES | AUDIO_TYPES:
            raise MediaError(
                f"unsupported image or sound type {real.suffix!r}",
                "use PNG, JPEG, GIF, SVG or WebP images; MP3, OGG, WAV, M4A, FLAC or Opus sounds",
                rule="image-type",
            )
        try:
            data = real.read_bytes()
        except OSError as exc:
            raise MediaError(f"cannot read {_what(src)} {src!r}: {exc.strerror or exc}", rule="image-missing") from exc
        name = f"dg-{hashlib.sha256(data).hexdigest()[:20]}{real.suffix.lower()}"
        self.files[name] = data
        self._names[real] = name
        return name


def _what(src: str) -> str:
    return "sound" if Path(src).suffix.lower() in AUDIO_TYPES else "image"


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
    notices: tuple[str, ...] = ()  # what the user should know that is not about the sources (the cache)

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


def read_sources(
    source: Path, listed: Callable[[Sequence[Path]], None] | None = None
) -> tuple[DeckConfig, dict[Path, bytes], list[Diagnostic]]:
    """Read ``deckgen.toml`` and every ``*.md`` category file of ``source`` (``listed`` sees their paths
    before they are read).

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
        config_bytes = config_path.read_bytes()
    except OSError as exc:
        raise SourceError.single(SourceLocation(config_path, 1), "unreadable", f"cannot read: {exc.strerror}") from exc
    config_text, problems = decode(config_bytes, config_path)
    if config_text is None:
        raise SourceError(problems)
    config, problems = load_config(config_text, config_path, RULES.keys())
    if config is None:
        raise SourceError(problems)
    found = category_files(source)
    problems += found.problems
    if listed is not None:
        listed(found.paths)
    files: dict[Path, bytes] = {}
    for path in found.paths:
        try:
            data = read_regular(path)
        except OSError as exc:
            problems.append(Diagnostic(SourceLocation(path, 1), "unreadable", f"cannot read file: {exc.strerror}"))
            continue
        if data is not None:  # replaced by a FIFO or device since it was listed: skipped
            files[path] = data
    return config, files, problems


CATEGORY_SUFFIXES = (".md", ".markdown")  # compared case-insensitively: x.MD and x.Markdown are read too


@dataclass(frozen=True, slots=True)
class CategoryFiles:
    """The category files of a source folder, what is wrong with the listing, and what was skipped (and why)."""

    paths: tuple[Path, ...]
    problems: tuple[Diagnostic, ...]
    skipped: tuple[tuple[Path, str], ...]


def category_files(source: Path) -> CategoryFiles:
    """Which files of ``source`` and its sub-folders are category files: the one place that decides it.

    Folders are subdecks, so sub-folders are read too, except hidden ones, symlinked ones and those
    holding their own ``deckgen.toml`` (another deck). ``README.md`` and ``_*.md`` files are not
    categories; ``_deck.md`` (a folder's subdeck name, order and description) is listed with them.
    Dot-files and editor droppings (``.#x.md`` Emacs locks, ``._x.md`` macOS forks, ``x.md~``
    backups, ``.x.md.swp``) and anything that is not a regular file (a FIFO would block the read
    forever) are skipped; a symlink leaving the source folder is an error, as for images.
    """
    root = source.resolve()
    paths: list[Path] = []
    problems: list[Diagnostic] = []
    skipped: list[tuple[Path, str]] = []
    try:
        entries = sorted(source.iterdir())
    except OSError as exc:
        raise SourceError.single(SourceLocation(source, 1), "unreadable", f"cannot list: {exc.strerror}") from exc
    entries += _sub_folder_entries(entries, problems)
    for path in entries:
        name = path.name
        markdown_like = any(s in name.lower() for s in CATEGORY_SUFFIXES)
        if not markdown_like:
            continue
        if name.startswith(".") or name.endswith(("~", "#")) or not name.lower().endswith(CATEGORY_SUFFIXES):
            skipped.append((path, "hidden, backup or editor file"))
            continue
        if name != FOLDER_FILE and (name.startswith("_") or path.stem.lower() == "readme"):
            skipped.append((path, "README and _* files are not categories"))
            continue
        shown = Path(os.fsencode(path).decode("utf-8", "replace"))
        if shown != path:
            problems.append(
                Diagnostic(SourceLocation(shown, 1), "encoding", "file name is not valid UTF-8", "rename the file")
            )
            continue
        try:
            mode = path.stat().st_mode
            real = path.resolve()
        except OSError as exc:
            problems.append(Diagnostic(SourceLocation(path, 1), "unreadable", f"cannot read file: {exc.strerror}"))
            continue
        if not real.is_relative_to(root):
            problems.append(
                Diagnostic(
                    SourceLocation(path, 1),
                    "file-outside-source",
                    f"{name} is a link to {real}, outside the source folder",
                    "copy the file into the source folder",
                )
            )
        elif stat.S_ISDIR(mode):
            problems.append(Diagnostic(SourceLocation(path, 1), "unreadable", "cannot read file: Is a directory"))
        elif not stat.S_ISREG(mode):
            skipped.append((path, "not a regular file"))
        else:
            paths.append(path)
    return CategoryFiles(tuple(paths), tuple(problems), tuple(skipped))


def _sub_folder_entries(entries: list[Path], problems: list[Diagnostic]) -> list[Path]:
    """The entries of the sub-folders among ``entries``, recursively (see ``category_files``)."""
    found: list[Path] = []
    for folder in entries:
        name = folder.name
        if name.startswith(".") or any(s in name.lower() for s in CATEGORY_SUFFIXES):
            continue  # hidden; or named like a category file, which the caller reports
        if folder.is_symlink() or not folder.is_dir() or (folder / CONFIG_NAME).exists():
            continue
        try:
            inside = sorted(folder.iterdir())
        except OSError as exc:
            problems.append(Diagnostic(SourceLocation(folder, 1), "unreadable", f"cannot list: {exc.strerror}"))
            continue
        found += inside + _sub_folder_entries(inside, problems)
    return found


def lock_ids(lock: Lock) -> frozenset[str]:
    """Every id the lock has ever used (alive, removed, or a former id): a new note may take none of them."""
    return frozenset(lock.notes) | lock.retired_ids()


def render_deck(deck: Deck, media: MediaStore) -> tuple[list[RenderedNote], dict[str, str], list[Diagnostic]]:
    """Render every note (in deck order) and every category intro, here, with no cache."""
    with open_cache(None) as cache, WorkPool(1) as pool:
        return RenderStage(deck, media, MediaStore, cache, pool=pool).rendered()


# Sources at least this large with nothing cached mean seconds of work: start the worker processes
# before the sources are read, while this process is still small (see ``WorkPool``): a worker forked
# later keeps its own copy of every page the parent frees or touches (at 50k notes, 100+ MB each).
EAGER_POOL_BYTES = 256 * 1024


def _start_early(pool: WorkPool, cache_dir: Path | None) -> Callable[[Sequence[Path]], None]:
    cached = cache_file(cache_dir)

    def listed(paths: Sequence[Path]) -> None:
        if pool.jobs < 2 or (cached is not None and cached.is_file()):
            return  # one core, or a warm cache: most notes will come from it
        size = 0
        for path in paths:
            with contextlib.suppress(OSError):
                size += path.stat().st_size
        if size >= EAGER_POOL_BYTES:
            preload_renderer()
            pool.start()

    return listed


@dataclass(frozen=True, slots=True)
class _Stages:
    deck: Deck
    media: MediaStore
    rendered: list[RenderedNote]
    intros: dict[str, str]
    problems: list[Diagnostic]
    notices: tuple[str, ...]
    lock: Lock  # this deck's lock (empty when the file belongs to another deck: ``foreign`` says so)
    foreign: list[Diagnostic]
    hashes: KnownHashes  # field hashes the workers computed


def _run_stages(
    source: Path,
    cache_dir: Path | None,
    *,
    save: bool,
    jobs: int | None,
    progress: Progress | None,
    check: bool,
    package: bool = False,
) -> _Stages:
    """Read, parse, lint and render (from the cache where it can); ``check``: only what can report problems;
    ``package``: a package will be written."""
    timings.lap("startup")
    cores = available_cores() if jobs is None else max(1, jobs)
    with WorkPool(cores, warm_up_worker) as pool:
        config, files, problems = read_sources(source, _start_early(pool, cache_dir))
        with (
            open_cache(cache_dir, writable=save) as cache,
            Prefetch() if check else Prefetch.start(cache, cores) as prefetch,
        ):
            if prefetch.keys:  # a big warm build: the workers forked now, while this process is small
                pool.start(warm_up=False)
            lock, foreign = _read_own_lock(source, config.uuid, texts=not check)
            timings.lap("read")
            memo = ParseMemo(cache, files, pool)
            deck, found = parse_deck(config, source, files, memo.parse, lock_ids(lock))  # ids suggested avoid them
            files.clear()  # the notes hold what is needed; a big deck's bytes go now, not at the end
            release_free_memory()
            problems += found
            media = MediaStore(source)
            timings.lap("parse")
            stage = RenderStage(
                deck,
                media,
                MediaStore,
                cache,
                pool=pool,
                progress=progress,
                problems_only=check,
                digest=memo.digest,
                prefetch=prefetch,
            )
            memo.remember()
            timings.lap("render")
            problems += check_deck(deck, stage.note_findings, stage.duplicate_pairs)
            release_free_memory()
            timings.lap("checks")
            if package:  # the workers are finishing the safety net: this process waits for them meanwhile
                load_writer()
            rendered, intros, found = stage.rendered()
            intros = {**_folder_intros(deck), **intros}
            problems += found
            timings.lap("render")
            if save:
                stage.save()
            timings.lap("cache")
            notices = (cache.warning,) if cache.warning else ()
    return _Stages(deck, media, rendered, intros, problems, notices, lock, foreign, stage.hashes)


def compile_deck(
    source: Path,
    now: int,
    *,
    cache_dir: Path | None = None,
    save_cache: bool = True,
    jobs: int | None = None,
    progress: Progress | None = None,
    accept_notetype_changes: bool = False,
    wall_clock: int = 0,
    package: bool = False,
) -> Compiled:
    """Parse, check and render the deck and compute the lock update, writing nothing but the cache.

    Every diagnostic of every stage is collected in ``Compiled.diagnostics``; callers decide
    whether errors are fatal (build) or just reported (check). ``cache_dir`` (e.g. ``build/.cache``)
    holds rendered notes and lint results from earlier runs; ``jobs`` caps worker processes
    (default: one per core). Neither changes the result. ``accept_notetype_changes`` is for a caller
    that applies notetype changes itself (``deckgen sync``): they stay in ``diff.hazards``, not errors.
    ``wall_clock`` is the real time of the build: changed notes get a ``mod`` no earlier (see lock.py).
    ``package``: the caller will write a package (its writer is loaded while the workers finish).
    """
    run = _run_stages(source, cache_dir, save=save_cache, jobs=jobs, progress=progress, check=False, package=package)
    lock, foreign = run.lock, run.foreign
    nts, uuid = notetypes.all_notetypes(), run.deck.config.uuid
    new_lock, diff = update_lock(lock, run.rendered, nts, now, uuid, wall_clock, run.hashes)
    timings.lap("lock")
    problems = run.problems + foreign + list(diff.problems)
    problems += hazard_diagnostics(diff.hazards, accept_notetype_changes=accept_notetype_changes)
    diagnostics = tuple(sorted(problems, key=Diagnostic.sort_key))
    media_files = dict(sorted(run.media.files.items()))
    return Compiled(
        run.deck, tuple(run.rendered), run.intros, media_files, lock, new_lock, diff, diagnostics, run.notices
    )


def _read_own_lock(source: Path, deck_uuid: str, *, texts: bool = False) -> tuple[Lock, list[Diagnostic]]:
    """The source folder's lock, or an empty one plus an error when it belongs to another deck; ``texts``:
    to be written again (``read_lock``)."""
    lock = read_lock(source / LOCK_NAME, texts=texts)
    foreign = foreign_lock(lock, deck_uuid, source / LOCK_NAME)
    return (Lock(), foreign) if foreign else (lock, [])


def check_sources(
    source: Path, *, cache_dir: Path | None = None, jobs: int | None = None, progress: Progress | None = None
) -> tuple[Diagnostic, ...]:
    """Every diagnostic ``compile_deck`` would report, rendering only the notes that can report one.

    Reads ``cache_dir`` when given but writes nothing.
    """
    with no_cycle_collection():
        run = _run_stages(source, cache_dir, save=False, jobs=jobs, progress=progress, check=True)
        deck = run.deck
        placed = [(note, deck.subdeck_name(c)) for c in deck.categories for note in c.notes]
        found, hazards = lock_findings(run.lock, placed, deck.config.uuid)
    problems = run.problems + run.foreign + found + hazard_diagnostics(hazards)
    return tuple(sorted(problems, key=Diagnostic.sort_key))


def package_inputs(
    compiled: Compiled,
) -> tuple[list[PackageDeck], list[PackagedNote], dict[int, tuple[notetypes.NoteType, int]]]:
    deck = compiled.deck
    used = {deck.subdeck_name(c) for c in deck.categories if c.notes}
    # Folder subdecks holding notes are written too, so each has a stable id (not one Anki makes up).
    folders = [deck.folder_deck_name(f) for f in deck.folders if f.name]
    names = [n for n in folders if any(u.startswith(n + "::") for u in used) and n not in used]
    names += [deck.subdeck_name(c) for c in deck.categories if c.notes]
    decks = [PackageDeck(deck.name, compiled.intros.get(deck.name, ""))]
    decks += [PackageDeck(name, compiled.intros.get(name, "")) for name in names]
    entries = compiled.new_lock.notes
    notes = [
        PackagedNote(rn, entries[rn.note.id].guid, entries[rn.note.id].mod, due)
        for due, rn in enumerate(compiled.notes, start=1)
    ]
    nt_mods = {nt.id: (nt, compiled.new_lock.notetypes[nt.name].mod) for nt in notetypes.all_notetypes()}
    return decks, notes, nt_mods


# Temp files and scratch folders of a build killed before it could remove them: older than this,
# no running build still uses them.
STALE_SECONDS = 300


def sweep_leftovers(out_dir: Path, source: Path, now: float | None = None) -> None:
    """Remove what killed builds left behind (best effort): package and lock temp files, scratch
    collections, and lock temp files older versions put in ``source``."""
    cutoff = (time.time() if now is None else now) - STALE_SECONDS
    patterns = [(out_dir, ".*.tmp"), (out_dir, ".deckgen-*")]
    patterns.append((source, f".{LOCK_NAME}.*.tmp"))
    for folder, pattern in patterns:
        try:
            stale = [p for p in folder.glob(pattern) if p.lstat().st_mtime < cutoff]
        except OSError:
            continue
        for path in stale:
            with contextlib.suppress(OSError):
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink()


def load_deck(source: Path) -> tuple[Deck, list[Diagnostic], Lock]:
    """Read and parse the sources and the lock only (for authoring commands that need no rendering)."""
    config, files, problems = read_sources(source)
    lock, foreign = _read_own_lock(source, config.uuid)
    deck, found = parse_deck(config, source, files, reserved=lock_ids(lock))
    return deck, problems + foreign + found, lock


def _folder_intros(deck: Deck) -> dict[str, str]:
    """Rendered descriptions of the folder subdecks (and of the root deck), by full deck name."""
    described = [f for f in deck.folders if f.intro]
    if not described:
        return {}
    renderer = Renderer()
    return {deck.folder_deck_name(f): renderer.convert(f.intro)[0] for f in described}


def write_outputs(compiled: Compiled, output: Path, lock_path: Path) -> None:
    """Write the package, then the lock if it changed (each atomically; temp files beside the package)."""
    decks, notes, nt_mods = package_inputs(compiled)
    try:
        write_package(output, compiled.deck.config.uuid, decks, notes, nt_mods, compiled.media)
        timings.lap("package")
    except (OSError, sqlite3.Error) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise DeckgenError(f"cannot write {output}: {reason}; the previous package is unchanged") from exc
    if compiled.new_lock != compiled.lock:
        try:
            write_lock(lock_path, compiled.new_lock, temp_dir=output.parent)
            timings.lap("lock")
        except OSError as exc:
            raise DeckgenError(f"wrote {output} but cannot update {lock_path}: {exc.strerror or exc}") from exc


def build(
    source: Path,
    out_dir: Path,
    *,
    now: int,
    locked: bool = False,
    dry_run: bool = False,
    strict: bool = False,
    cache: bool = True,
    jobs: int | None = None,
    progress: Progress | None = None,
    accept_notetype_changes: bool = False,
    wall_clock: int = 0,
    on_wait: Callable[[Path], None] | None = None,
) -> BuildResult:
    """Build the package. On any error nothing is written and the previous package stays intact.

    ``strict`` treats warnings as errors. ``cache`` keeps rendered notes in ``out_dir/.cache`` for
    the next build (a dry run only reads it); the package is the same bytes with or without it.
    A build that writes holds OS locks on the source and output folders from before it reads the
    sources until it has written (``exclusive``), so builds run one at a time; ``on_wait`` is called
    when it has to wait for another one.
    """
    run = functools.partial(
        _build,
        source,
        out_dir,
        now=now,
        locked=locked,
        dry_run=dry_run,
        strict=strict,
        cache=cache,
        jobs=jobs,
        progress=progress,
        accept_notetype_changes=accept_notetype_changes,
        wall_clock=wall_clock,
    )
    with no_cycle_collection():
        return one_at_a_time(source, out_dir, run, dry_run=dry_run, on_wait=on_wait)


def one_at_a_time(
    source: Path,
    out_dir: Path,
    run: Callable[[], T],
    *,
    dry_run: bool,
    on_wait: Callable[[Path], None] | None = None,
) -> T:
    """``run()`` holding the OS locks on the source and output folders (``exclusive``), unless it
    writes nothing; used by every command that writes a package and lock (build, sync)."""
    if dry_run or not source.is_dir():  # nothing to protect (a missing source is reported by the build)
        return run()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DeckgenError(f"cannot write {out_dir}: {exc.strerror or exc}") from exc
    with exclusive(source, out_dir, on_wait):
        return run()


def fingerprint(path: Path) -> tuple[int, int, int] | None:
    """What changes when anything rewrites ``path`` (an atomic rename gives a new inode)."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino


def _build(
    source: Path,
    out_dir: Path,
    *,
    now: int,
    locked: bool,
    dry_run: bool,
    strict: bool,
    cache: bool,
    jobs: int | None,
    progress: Progress | None,
    accept_notetype_changes: bool,
    wall_clock: int,
) -> BuildResult:
    lock_path = source / LOCK_NAME
    lock_seen = fingerprint(lock_path)
    cache_dir = out_dir / CACHE_DIR if cache else None
    if not dry_run:
        sweep_leftovers(out_dir, source)
    compiled = compile_deck(
        source,
        now,
        cache_dir=cache_dir,
        save_cache=not dry_run,
        jobs=jobs,
        progress=progress,
        accept_notetype_changes=accept_notetype_changes,
        wall_clock=wall_clock,
        package=not dry_run,
    )
    fatal = compiled.diagnostics if strict else compiled.errors
    if fatal:
        raise SourceError(fatal)
    output = out_dir / compiled.deck.config.output
    lock_changes = compiled.new_lock != compiled.lock
    if locked and lock_changes:
        d = compiled.diff
        raise LockError(
            f"{lock_path} is out of date ({len(d.added)} added, {len(d.changed)} changed, "
            f"{len(d.removed)} removed); run 'deckgen build' without --locked and commit the lock"
        )
    if not dry_run:
        if fingerprint(lock_path) != lock_seen:
            raise DeckgenError(
                f"{lock_path} changed while this build ran (another program wrote it); nothing written: "
                "run the build again"
            )
        write_outputs(compiled, output, lock_path)
    cards: Counter[str] = Counter()
    for rn in compiled.notes:
        cards[rn.deck] += len(rn.card_ords)
    counts = tuple((c.name, len(c.notes), cards[compiled.deck.subdeck_name(c)]) for c in compiled.deck.categories)
    return BuildResult(compiled, output, lock_path, not dry_run, lock_changes and not dry_run, counts)
