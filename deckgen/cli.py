"""The ``deckgen`` command line: wiring and reporting only; the work happens in library modules."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from deckgen import __version__
from deckgen.authoring import new_note, stats
from deckgen.build import timings
from deckgen.build.cache import CACHE_DIR
from deckgen.build.hazards import HazardKind, card_names, notetype_label
from deckgen.build.lock import LOCK_NAME, LockDiff, read_lock
from deckgen.build.parallel import batch_gc
from deckgen.build.pipeline import BuildResult, build, category_files, check_sources, load_deck

if TYPE_CHECKING:
    from deckgen.anki.sync import DeckSync
from deckgen.build.progress import ProgressBar, progress_bar
from deckgen.errors import DeckgenError, Severity, SourceError

F = TypeVar("F", bound=Callable[..., Any])
SOURCE_ARG = click.argument("source", type=click.Path(path_type=Path, file_okay=False), default=Path("source"))


def _out_option(default: Path, help_text: str) -> Callable[[F], F]:
    return click.option(
        "-o",
        "--out",
        "out_dir",
        type=click.Path(path_type=Path, file_okay=False),
        default=default,
        show_default=True,
        help=help_text,
    )


QUIET_OPTION = click.option("-q", "--quiet", is_flag=True, help="No progress bar or summary; only problems.")
NO_CACHE_OPTION = click.option("--no-cache", is_flag=True, help="Neither read nor write OUT/.cache.")
VERBOSE_OPTION = click.option("-v", "--verbose", is_flag=True, help="Also list the files of SOURCE that are skipped.")


def _report_skipped(source: Path, verbose: bool) -> None:
    if not verbose or not source.is_dir():
        return
    try:
        skipped = category_files(source).skipped
    except DeckgenError:
        return
    for path, why in skipped:
        click.echo(f"skipped {path.as_posix()} ({why})", err=True)


def _close(bar: ProgressBar | None) -> None:
    if bar is not None:
        bar.close()


# Anki stores times as signed 64-bit milliseconds; beyond the year 9999 nothing reads them back.
MAX_EPOCH = 253_402_300_799


def _now() -> int:
    """Build time in seconds; SOURCE_DATE_EPOCH (reproducible-builds convention) overrides the clock."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if not epoch:
        return int(time.time())
    if not epoch.isascii() or not epoch.isdigit() or int(epoch) > MAX_EPOCH:
        raise click.UsageError(f"SOURCE_DATE_EPOCH must be whole seconds since 1970, 0 to {MAX_EPOCH}; got {epoch!r}")
    return int(epoch)


def _fail(exc: DeckgenError) -> None:
    if isinstance(exc, SourceError):
        for diagnostic in exc.diagnostics:
            click.echo(diagnostic.format(), err=True)
        n = len(exc.diagnostics)
        click.echo(f"{n} error{'s' * (n != 1)}; nothing written", err=True)
    else:
        click.echo(f"error: {exc}", err=True)
    sys.exit(1)


def _diff_line(diff: LockDiff) -> str:
    parts = [f"{len(diff.added)} added", f"{len(diff.changed)} changed", f"{len(diff.removed)} removed"]
    if diff.renamed:
        parts.append(f"{len(diff.renamed)} renamed")
    return ", ".join(parts) + f", {diff.unchanged} unchanged"


ORPHAN_TEXT = (
    "orphans: notes removed from the sources but still in every collection that imported them\n"
    "  (Anki never deletes notes on import; users must delete them by hand, e.g. search 'Id:<id>' in the\n"
    "  browser; to keep a note's history under a new id, use <!-- id: new-id; was: old-id --> instead)"
)


def report_diff(diff: LockDiff) -> None:
    """What a rebuild changes against the lock, note by note."""
    renamed_to = {c.id: c.old_id for c in diff.renamed}
    changed = {c.id for c in diff.changed}
    for note_id in diff.added:
        click.echo(f"  + {note_id}  (new note)")
    for change in diff.changed:
        was = f"  (renamed from {renamed_to[change.id]}, history kept)" if change.id in renamed_to else ""
        click.echo(f"  ~ {change.id}  changed: {', '.join(change.fields)}{was}")
    for change in diff.renamed:
        if change.id not in changed:
            click.echo(f"  > {change.id}  (renamed from {change.old_id}, history kept)")
    for note_id in diff.removed:
        click.echo(f"  - {note_id}  (removed)")
    if diff.orphans:
        click.echo(ORPHAN_TEXT)
        for note_id in diff.orphans:
            click.echo(f"    {note_id}")
    report_hazards(diff)


def report_hazards(diff: LockDiff) -> None:
    """The notes whose change a re-import would not carry over (the warnings say what to do)."""
    if not diff.hazards:
        return
    click.echo("not applied by a plain re-import (see the warnings; 'deckgen sync' applies them):")
    for h in diff.hazards:
        what = {
            HazardKind.NOTETYPE_CHANGED: f"notetype {notetype_label(h.old)} -> {notetype_label(h.new)}",
            HazardKind.DECK_MOVED: f"moved '{h.old}' -> '{h.new}'",
            HazardKind.CARDS_REMOVED: f"card(s) {card_names(h)} removed",
        }[h.kind]
        click.echo(f"  ! {h.note_id}  {what}")


def report_build(result: BuildResult, dry_run: bool) -> None:
    deck = result.compiled.deck
    width = max([len(name) for name, _, _ in result.subdecks] + [5])
    click.echo(deck.name)
    for name, notes, cards in result.subdecks:
        click.echo(f"  {name:<{width}}  {notes:>5} notes  {cards:>5} cards")
    total_notes = sum(n for _, n, _ in result.subdecks)
    total_cards = sum(c for _, _, c in result.subdecks)
    click.echo(f"  {'total':<{width}}  {total_notes:>5} notes  {total_cards:>5} cards")
    click.echo(f"since the lock: {_diff_line(result.compiled.diff)}")
    if dry_run:
        report_diff(result.compiled.diff)
        click.echo("dry run: nothing written")
        return
    report_hazards(result.compiled.diff)
    if result.lock_written:
        click.echo(f"updated {result.lock_path}")
    click.echo(f"wrote {result.output}")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="deckgen")
@click.pass_context
def main(ctx: click.Context) -> None:
    """Compile Markdown sources into an Anki deck (.apkg) that updates in place."""
    batch_gc()
    ctx.call_on_close(timings.write)
    # SIGTERM (kill, a CI timeout) stops a build like Ctrl-C: temp files are removed on the way out.
    signal.signal(signal.SIGTERM, _interrupt)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@main.command("build")
@SOURCE_ARG
@_out_option(Path("build"), "Output folder for the .apkg.")
@click.option("--locked", is_flag=True, help="Fail instead of updating deckgen.lock (for CI).")
@click.option("--dry-run", is_flag=True, help="Show what would change (like 'deckgen diff'); write nothing.")
@click.option("--strict", is_flag=True, help="Treat warnings as errors.")
@QUIET_OPTION
@NO_CACHE_OPTION
@VERBOSE_OPTION
@click.option("-j", "--jobs", type=click.IntRange(min=1), help="Rendering processes [default: one per core].")
def build_cmd(
    source: Path,
    out_dir: Path,
    locked: bool,
    dry_run: bool,
    strict: bool,
    quiet: bool,
    no_cache: bool,
    verbose: bool,
    jobs: int | None,
) -> None:
    """Build SOURCE (default: source/) into OUT/<name>.apkg."""
    _report_skipped(source, verbose)
    bar = progress_bar(sys.stderr, "rendering", quiet=quiet, after="writing the package")
    try:
        result = build(
            source,
            out_dir,
            now=_now(),
            wall_clock=int(time.time()),
            on_wait=lambda folder: click.echo(f"waiting for another build using {folder} to finish ...", err=True),
            locked=locked,
            dry_run=dry_run,
            strict=strict,
            cache=not no_cache,
            jobs=jobs,
            progress=bar,
        )
    except DeckgenError as exc:
        _close(bar)
        _fail(exc)
        return
    _close(bar)
    for notice in result.compiled.notices:
        click.echo(f"warning: {notice}", err=True)
    for warning in result.compiled.warnings:
        click.echo(warning.format(), err=True)
    for notice in result.compiled.notices:
        click.echo(f"warning: {notice}", err=True)
    if not quiet:
        report_build(result, dry_run)


@main.command("check")
@SOURCE_ARG
@click.option("--strict", is_flag=True, help="Treat warnings as errors.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@_out_option(Path("build"), "Build folder whose cache (OUT/.cache) the check reuses; it writes nothing there.")
@QUIET_OPTION
@NO_CACHE_OPTION
@VERBOSE_OPTION
def check_cmd(source: Path, strict: bool, fmt: str, out_dir: Path, quiet: bool, no_cache: bool, verbose: bool) -> None:
    """Validate and lint SOURCE without writing anything; exit 1 on errors."""
    _report_skipped(source, verbose)
    bar = progress_bar(sys.stderr, "checking", quiet=quiet)
    try:
        diagnostics = check_sources(source, cache_dir=None if no_cache else out_dir / CACHE_DIR, progress=bar)
    except SourceError as exc:
        diagnostics = exc.diagnostics
    except DeckgenError as exc:
        _close(bar)
        _fail(exc)
        return
    _close(bar)
    failing = [d for d in diagnostics if strict or d.severity is Severity.ERROR]
    if fmt == "json":
        click.echo(json.dumps([d.to_json() for d in diagnostics], indent=2, ensure_ascii=False))
    else:
        for diagnostic in diagnostics:
            click.echo(diagnostic.format(), err=bool(failing))
        errors = sum(d.severity is Severity.ERROR for d in diagnostics)
        click.echo(f"{errors} error(s), {len(diagnostics) - errors} warning(s)", err=bool(failing))
    sys.exit(1 if failing else 0)


@main.command("diff")
@SOURCE_ARG
def diff_cmd(source: Path) -> None:
    """Show what a rebuild of SOURCE changes against its lock: added, changed, removed, renamed, orphans."""
    try:
        result = build(source, Path("build"), now=_now(), wall_clock=int(time.time()), dry_run=True)
    except DeckgenError as exc:
        _fail(exc)
        return
    report_build(result, dry_run=True)


PRUNE_HINT = {
    "report": "left as they are; --prune archive suspends them into {root}::Orphans, --prune delete deletes them",
    "archive": "suspended, tagged deckgen::orphan, moved to {root}::Orphans",
    "delete": "deleted with their review history",
}


def report_sync(done: DeckSync, dry_run: bool) -> None:
    """The plan note by note, then a summary like build's."""
    from deckgen.anki.sync import Prune

    plan = done.result.plan
    renamed = {c.id: c.old_id for c in done.compiled.diff.renamed}
    click.echo(f"{plan.root} → {done.collection}")
    for problem in plan.notetypes.problems.values():
        click.echo(f"  ! {problem}", err=True)
    for nt in plan.notetypes.create:
        click.echo(f"  + notetype {nt.name}")
    for nt in plan.notetypes.update:
        click.echo(f"  ~ notetype {nt.name}  (templates and CSS updated in place)")
    for nt in plan.notetypes.kept:
        click.echo(f"  = notetype {nt.name}  (its look was changed inside Anki: kept until deckgen's changes)")
    for rn, _ in plan.add:
        click.echo(f"  + {rn.note.id}  (new note in {rn.deck})")
    for u, card in plan.removed_cards:
        reviews = f", {card.reps} review(s) lost" if card.reps else ""
        click.echo(f"  - {u.rendered.note.id}  card {card.ord + 1} removed (its template or cloze is gone{reviews})")
    for u in plan.update:
        what = []
        if u.notetype_from is not None:
            what.append(f"notetype → {u.rendered.notetype.name}")
        elif u.fields:
            what.append("fields: " + ", ".join(u.fields))
        if u.tags is not None:
            what.append("tags")
        if u.move:
            what.append(f"moved to {u.rendered.deck}")
        if u.rendered.note.id in renamed:
            what.append(f"renamed from {renamed[u.rendered.note.id]}, history kept")
        if u.restore:
            what.append("restored from the orphans")
        if u.forced:
            what.append("overwrote edits made in Anki (--force)")
        if what:
            click.echo(f"  ~ {u.rendered.note.id}  {'; '.join(what)}")
    if plan.orphans:
        hint = PRUNE_HINT[plan.prune.value].format(root=plan.root)
        click.echo(f"  orphans (in the collection, no longer in the sources): {hint}")
        for orphan in plan.orphans:
            state = "  (archived)" if orphan.archived else ""
            click.echo(f"    {orphan.id}{state}")
    for name in plan.empty_decks:
        click.echo(f"  - {name}  (subdeck no longer in the sources, left empty: removed)")
    for conflict in plan.conflicts:
        click.echo(f"  ! {conflict.id}: {conflict.reason}; left untouched", err=True)
        for fc in conflict.fields:
            click.echo(f"      {fc.field}: in Anki {fc.held!r}, in the sources {fc.built!r}", err=True)
    if plan.conflicts:
        click.echo("  copy what you want to keep into the sources, or run sync with --force to overwrite", err=True)
    pruned = len(plan.pruned) if plan.prune is not Prune.REPORT else 0
    rows = [
        ("added", len(plan.add)),
        ("updated", len(plan.updated)),
        ("moved", len(plan.moved)),
        ("notetype changed", len(plan.notetype_changed)),
        ("cards removed", len(plan.removed_cards)),
        ("orphans", len(plan.orphans)),
        (f"orphans {plan.prune.value}d" if pruned else "", pruned),
        ("conflicts", len(plan.conflicts) + len(plan.notetypes.problems)),
    ]
    click.echo("  " + ", ".join(f"{n} {name}" for name, n in rows if name))
    if plan.media:
        click.echo(f"  {len(plan.media)} media file(s) to add")
    if plan.notetype_changed:
        click.echo(
            "  note: changing a note's type changes the collection's schema: the next AnkiWeb sync asks for a "
            "one-way upload (sync your phones to AnkiWeb before this sync, then choose Upload)"
        )
    if dry_run:
        click.echo("dry run: nothing changed")
    elif done.result.refused:
        click.echo(f"refused: this sync {done.result.refused}; run again with --yes; nothing changed", err=True)
    elif done.result.applied:
        backup = f" (Anki's backup made first, in {done.result.backup})" if done.result.backup else ""
        click.echo(f"updated {done.collection}{backup}")
    else:
        click.echo("the collection is up to date")
    if done.wrote:
        click.echo(f"wrote {done.output}")


@main.command("sync")
@SOURCE_ARG
@click.option(
    "--collection",
    "collection",
    required=True,
    help="The collection.anki2 file, a profile folder, or an Anki profile name (e.g. 'User 1').",
)
@_out_option(Path("build"), "Output folder for the .apkg, written as by build once the sync succeeds.")
@click.option("--dry-run", is_flag=True, help="Show the whole plan; change nothing.")
@click.option(
    "--prune",
    type=click.Choice(["archive", "delete"]),
    help="Orphans: archive (suspend, tag deckgen::orphan, move to ROOT::Orphans) or delete [default: report].",
)
@click.option("--yes", is_flag=True, help="Do not ask before deleting, or before pruning over 10% of the deck.")
@click.option("--force", is_flag=True, help="Overwrite notes edited inside Anki.")
def sync_cmd(
    source: Path, collection: str, out_dir: Path, dry_run: bool, prune: str | None, yes: bool, force: bool
) -> None:
    """Build SOURCE and apply it to an Anki collection (close Anki first): adds, updates, moves,
    notetype changes, removed cards and orphans, keeping review history."""
    from deckgen.anki.collection import locate_collection
    from deckgen.anki.sync import Prune, SyncOptions, SyncPlan, sync_deck

    def confirm(plan: SyncPlan) -> bool:
        if not sys.stdin.isatty():
            return False
        return click.confirm(f"This sync {plan.needs_yes}. Continue?", default=False)

    options = SyncOptions(dry_run=dry_run, prune=Prune(prune or "report"), force=force, yes=yes)
    try:
        done = sync_deck(
            source,
            out_dir,
            locate_collection(collection),
            now=_now(),
            options=options,
            confirm=confirm,
            wall_clock=int(time.time()),
            on_wait=lambda folder: click.echo(f"waiting for another build using {folder} to finish ...", err=True),
        )
    except DeckgenError as exc:
        _fail(exc)
        return
    for warning in done.warnings:
        click.echo(warning.format(), err=True)
    report_sync(done, dry_run)
    plan = done.result.plan
    if plan.failed or done.result.refused:
        sys.exit(1)


@main.command("new")
@click.argument("prompt")
@click.option("--deck", "deck_name", help="Subdeck to add the note to (default: the first one).")
@click.option(
    "--source", "source", type=click.Path(path_type=Path, file_okay=False), default=Path("source"), show_default=True
)
def new_cmd(prompt: str, deck_name: str | None, source: Path) -> None:
    """Append a note skeleton with a fresh unique id to the subdeck's file."""
    try:
        deck, _ = load_deck(source)
        note = new_note(deck, prompt, deck_name, read_lock(source / LOCK_NAME).retired_ids())
    except DeckgenError as exc:
        _fail(exc)
        return
    try:
        with note.path.open("a", encoding="utf-8", newline="\n") as fh:
            fh.write(note.text)
    except OSError as exc:
        _fail(DeckgenError(f"cannot add the note to {note.path}: {exc.strerror or exc}"))
    click.echo(f"added '{note.id}' to {note.path}")


@main.command("stats")
@SOURCE_ARG
def stats_cmd(source: Path) -> None:
    """Print notes per subdeck, kind and tag."""
    try:
        deck, _ = load_deck(source)
    except DeckgenError as exc:
        _fail(exc)
        return
    result = stats(deck)
    for title, rows in (("subdeck", result.subdecks), ("kind", result.kinds), ("tag", result.tags)):
        width = max([len(name) for name, _ in rows] + [len(title)])
        click.echo(f"{title:<{width}}  notes")
        for name, count in rows:
            click.echo(f"{name:<{width}}  {count:>5}")
        click.echo("")
    click.echo(f"total  {result.total} notes")


@main.command("preview")
@SOURCE_ARG
@_out_option(Path("build/preview"), "Output folder for index.html, its images and MathJax.")
@click.option("--open", "open_page", is_flag=True, help="Open the page in the default browser.")
@click.option(
    "--mathjax",
    "mathjax_file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="A MathJax 3 tex-svg-full.js to use (default: the one from 'pip install deckgen[preview]').",
)
def preview_cmd(source: Path, out_dir: Path, open_page: bool, mathjax_file: Path | None) -> None:
    """Write a static HTML page with every card's front and back (night mode, phone width, search)."""
    from deckgen.preview.page import find_mathjax, write_preview

    try:
        result = write_preview(source, out_dir, now=_now(), mathjax=mathjax_file or find_mathjax())
    except DeckgenError as exc:
        _fail(exc)
        return
    for diagnostic in result.diagnostics:
        click.echo(diagnostic.format(), err=True)
    click.echo(f"{result.subdecks} subdecks, {result.notes} notes, {result.cards} cards, {result.media} images")
    if result.mathjax is None:
        click.echo("MathJax not found: math is shown as TeX source (pip install 'deckgen[preview]')")
    click.echo(f"wrote {result.path}")
    if open_page:
        click.launch(result.path.resolve().as_uri())
    if result.errors:
        sys.exit(1)
