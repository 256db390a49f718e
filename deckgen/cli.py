"""The ``deckgen`` command line: wiring and reporting only; the work happens in library modules."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from deckgen import __version__
from deckgen.authoring import add_ids, appended, init_files, new_note, stats
from deckgen.build import timings
from deckgen.build.cache import CACHE_DIR
from deckgen.build.hazards import HazardKind, card_names, notetype_label
from deckgen.build.locate import DISCOVERY_HELP, SOURCE_FOLDER, DeckNotFound, default_out_dir, find_deck
from deckgen.build.lock import LockDiff, atomic_file
from deckgen.build.parallel import batch_gc
from deckgen.build.pipeline import (
    BuildResult,
    build,
    category_files,
    check_sources,
    load_deck,
    lock_ids,
    read_sources,
)

if TYPE_CHECKING:
    from deckgen.anki.sync import DeckSync
from deckgen.build.progress import ProgressBar, progress_bar
from deckgen.errors import DeckgenError, Diagnostic, Severity, SourceError
from deckgen.reports import check_json, diff_json, diff_line, failure_line, plural, stats_json
from deckgen.sources.config import deck_name_from_path

F = TypeVar("F", bound=Callable[..., Any])
SOURCE_ARG = click.argument("source", type=click.Path(path_type=Path, file_okay=False), required=False)


def _out_option(subfolder: str, help_text: str) -> Callable[[F], F]:
    where = f"build/{subfolder}" if subfolder else "build/"
    return click.option(
        "-o",
        "--out",
        "out_dir",
        type=click.Path(path_type=Path, file_okay=False),
        default=None,
        help=f"{help_text} [default: {where} beside the deck: next to a folder named source/, else inside the deck]",
    )


QUIET_OPTION = click.option("-q", "--quiet", is_flag=True, help="No progress bar or summary; only problems.")
NO_CACHE_OPTION = click.option("--no-cache", is_flag=True, help="Neither read nor write OUT/.cache.")
FORMAT_OPTION = click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: one document with a summary object (schema: deckgen/data/output.schema.json).",
)


def _help(text: str) -> str:
    """A command's help with the deck-discovery rule every command shares."""
    return f"{text}\n\n{DISCOVERY_HELP}"


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


def _wall_clock() -> int:
    """The real time, whatever SOURCE_DATE_EPOCH says: a changed note's mod never precedes it (lock.py)."""
    return int(time.time())


def _now() -> int:
    """Build time in seconds; SOURCE_DATE_EPOCH (reproducible-builds convention) overrides the clock."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if not epoch:
        return int(time.time())
    if not epoch.isascii() or not epoch.isdigit() or int(epoch) > MAX_EPOCH:
        raise click.UsageError(f"SOURCE_DATE_EPOCH must be whole seconds since 1970, 0 to {MAX_EPOCH}; got {epoch!r}")
    return int(epoch)


def _report_failure(exc: DeckgenError, strict: bool = False) -> None:
    if isinstance(exc, SourceError):
        for diagnostic in exc.diagnostics:
            click.echo(diagnostic.format(), err=True)
        click.echo(f"{failure_line(exc.diagnostics, strict)}; nothing written", err=True)
    else:
        click.echo(f"error: {exc}", err=True)


def _fail(exc: DeckgenError, strict: bool = False) -> NoReturn:
    _report_failure(exc, strict)
    sys.exit(1)


def _replace(path: Path, data: bytes) -> None:
    """Rewrite a source file atomically, but never one its owner made read-only (a rename would)."""
    if not os.access(path, os.W_OK):
        raise PermissionError(13, "Permission denied", str(path))
    with atomic_file(path) as fh:
        fh.write(data)


def _deck(source: Path | None) -> Path:
    try:
        return find_deck(source)
    except DeckgenError as exc:
        _fail(exc)


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
    click.echo(f"since the lock: {diff_line(result.compiled.diff)}")
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
    """Compile Markdown sources into an Anki deck (.apkg) that updates in place.

    Every command finds its deck like git finds its repository: SOURCE if given, else
    ./source/deckgen.toml, else ./deckgen.toml, else the nearest parent folder with one.
    Output goes to build/ beside the deck (next to a folder named source/, else inside the deck).
    """
    batch_gc()
    ctx.call_on_close(timings.write)
    # SIGTERM (kill, a CI timeout) stops a build like Ctrl-C: temp files are removed on the way out.
    signal.signal(signal.SIGTERM, _interrupt)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run() -> NoReturn:
    """The ``deckgen`` command: ``main``, then exit without tearing the heap down object by object.

    Every command has closed its files, cache and worker pool by the time ``main`` returns (they are
    all ``with`` blocks), so what is left is freeing a deck's worth of objects one by one: ~50 ms
    on a 10k-note deck, on every run, for nothing. Output streams are flushed first.
    """
    status = 0
    try:
        main()
    except SystemExit as exc:
        if isinstance(exc.code, int):
            status = exc.code
        elif exc.code is not None:
            print(exc.code, file=sys.stderr)
            status = 1
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):  # a closed pipe (``deckgen check | head``): nothing more to say
        pass
    os._exit(status)


# --- init ------------------------------------------------------------------------------------------


@main.command("init", help="Start a new deck in DIR (default: the current folder).")
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False), default=Path("."), required=False)
@click.option("--name", help="The deck's name in Anki [default: from DIR's name].")
def init_cmd(directory: Path, name: str | None) -> None:
    """Write DIR/source/deckgen.toml (with a fresh uuid), an example category file and a .gitignore for build/.

    Refuses to touch a folder that already holds a deck.
    """
    deck_name = name or deck_name_from_path(directory.resolve())
    try:
        files = init_files(directory, deck_name, str(uuid.uuid4()))
        for path, text in files:
            with atomic_file(path) as fh:
                fh.write(text.encode("utf-8"))
    except DeckgenError as exc:
        _fail(exc)
    except OSError as exc:
        _fail(DeckgenError(f"cannot write in {directory}: {exc.strerror or exc}"))
    for path, _ in files:
        click.echo(f"wrote {path}")
    go = "" if directory == Path(".") else f"cd {directory} && "
    click.echo(f"next: edit {files[1][0].relative_to(directory).as_posix()}, then: {go}deckgen build")


# --- build / check / diff --------------------------------------------------------------------------


@main.command("build", help=_help("Build the deck into OUT/<name>.apkg and update its deckgen.lock."))
@SOURCE_ARG
@_out_option("", "Output folder for the .apkg.")
@click.option("--locked", is_flag=True, help="Fail instead of updating deckgen.lock (for CI).")
@click.option("--dry-run", is_flag=True, help="Show what would change (like 'deckgen diff'); write nothing.")
@click.option("--strict", is_flag=True, help="Treat warnings as errors.")
@click.option("--watch", is_flag=True, help="Rebuild on every save; print what changed and the problems. Ctrl-C stops.")
@QUIET_OPTION
@NO_CACHE_OPTION
@VERBOSE_OPTION
@click.option("-j", "--jobs", type=click.IntRange(min=1), help="Rendering processes [default: one per core].")
def build_cmd(
    source: Path | None,
    out_dir: Path | None,
    locked: bool,
    dry_run: bool,
    strict: bool,
    watch: bool,
    quiet: bool,
    no_cache: bool,
    verbose: bool,
    jobs: int | None,
) -> None:
    deck = _deck(source)
    out = out_dir or default_out_dir(deck)
    _report_skipped(deck, verbose)
    if watch and (dry_run or locked):
        raise click.UsageError("--watch cannot be combined with --dry-run or --locked")

    def run(label: str = "rendering") -> BuildResult | None:
        bar = progress_bar(sys.stderr, label, quiet=quiet, after="writing the package")
        try:
            result = build(
                deck,
                out,
                now=_now(),
                wall_clock=_wall_clock(),
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
            _report_failure(exc, strict)
            return None
        _close(bar)
        for notice in result.compiled.notices:
            click.echo(f"warning: {notice}", err=True)
        for warning in result.compiled.warnings:
            click.echo(warning.format(), err=True)
        return result

    result = run()
    if result is not None and not quiet:
        report_build(result, dry_run)
    if watch:
        _watch(deck, out, run)
    elif result is None:
        sys.exit(1)


def _watch(deck: Path, out: Path, run: Callable[[], BuildResult | None]) -> None:
    """Rebuild on every save until Ctrl-C; a failing build is reported and waited out."""
    from deckgen.build.watch import source_changes

    click.echo(f"watching {deck} for changes (Ctrl-C to stop)")
    try:
        for changed in source_changes(deck, out):
            click.echo(f"\nchanged: {', '.join(_shown(p, deck) for p in changed)}")
            result = run()
            if result is None:
                click.echo("waiting for the next save")
                continue
            click.echo(f"rebuilt: {diff_line(result.compiled.diff)}")
            if result.written:
                click.echo(f"wrote {result.output}")
    except KeyboardInterrupt:
        pass
    click.echo("stopped watching")


def _shown(path: Path, deck: Path) -> str:
    try:
        return path.relative_to(deck.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


@main.command("check", help=_help("Validate and lint the deck without writing anything; exit 1 on errors."))
@SOURCE_ARG
@click.option("--strict", is_flag=True, help="Treat warnings as errors.")
@FORMAT_OPTION
@_out_option("", "Build folder whose cache (OUT/.cache) the check reuses; it writes nothing there.")
@QUIET_OPTION
@NO_CACHE_OPTION
@VERBOSE_OPTION
def check_cmd(
    source: Path | None, strict: bool, fmt: str, out_dir: Path | None, quiet: bool, no_cache: bool, verbose: bool
) -> None:
    deck = _deck(source)
    _report_skipped(deck, verbose)
    cache_dir = None if no_cache else (out_dir or default_out_dir(deck)) / CACHE_DIR
    bar = progress_bar(sys.stderr, "checking", quiet=quiet)
    diagnostics: Sequence[Diagnostic]
    try:
        diagnostics = check_sources(deck, cache_dir=cache_dir, progress=bar)
    except SourceError as exc:
        diagnostics = exc.diagnostics
    except DeckgenError as exc:
        _close(bar)
        _fail(exc)
    _close(bar)
    failing = [d for d in diagnostics if strict or d.severity is Severity.ERROR]
    if fmt == "json":
        click.echo(json.dumps(check_json(diagnostics, strict), indent=2, ensure_ascii=False))
    else:
        for diagnostic in diagnostics:
            click.echo(diagnostic.format(), err=bool(failing))
        errors = sum(d.severity is Severity.ERROR for d in diagnostics)
        warnings = len(diagnostics) - errors
        summary = f"{errors} error(s), {warnings} warning(s)"
        if strict and warnings:
            summary += f"; {plural(warnings, 'warning')} treated as errors (--strict)"
        click.echo(summary, err=bool(failing))
    sys.exit(1 if failing else 0)


@main.command(
    "diff", help=_help("Show what a rebuild changes against the lock: added, changed, removed, renamed, orphans.")
)
@SOURCE_ARG
@FORMAT_OPTION
def diff_cmd(source: Path | None, fmt: str) -> None:
    deck = _deck(source)
    try:
        result = build(deck, default_out_dir(deck), now=_now(), wall_clock=_wall_clock(), dry_run=True)
    except DeckgenError as exc:
        _fail(exc)
    if fmt == "json":
        click.echo(json.dumps(diff_json(result), indent=2, ensure_ascii=False))
    else:
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


@main.command(
    "sync",
    help=_help(
        "Build the deck and apply it to an Anki collection (close Anki first): adds, updates, moves, "
        "notetype changes, removed cards and orphans, keeping review history."
    ),
)
@SOURCE_ARG
@click.option(
    "--collection",
    "collection",
    required=True,
    help="The collection.anki2 file, a profile folder, or an Anki profile name (e.g. 'User 1').",
)
@_out_option("", "Output folder for the .apkg, written as by build once the sync succeeds.")
@click.option("--dry-run", is_flag=True, help="Show the whole plan; change nothing.")
@click.option(
    "--prune",
    type=click.Choice(["archive", "delete"]),
    help="Orphans: archive (suspend, tag deckgen::orphan, move to ROOT::Orphans) or delete [default: report].",
)
@click.option("--yes", is_flag=True, help="Do not ask before deleting, or before pruning over 10% of the deck.")
@click.option("--force", is_flag=True, help="Overwrite notes edited inside Anki.")
def sync_cmd(
    source: Path | None, collection: str, out_dir: Path | None, dry_run: bool, prune: str | None, yes: bool, force: bool
) -> None:
    from deckgen.anki.collection import locate_collection
    from deckgen.anki.sync import Prune, SyncOptions, SyncPlan, sync_deck

    def confirm(plan: SyncPlan) -> bool:
        if not sys.stdin.isatty():
            return False
        return click.confirm(f"This sync {plan.needs_yes}. Continue?", default=False)

    deck = _deck(source)
    options = SyncOptions(dry_run=dry_run, prune=Prune(prune or "report"), force=force, yes=yes)
    try:
        done = sync_deck(
            deck,
            out_dir or default_out_dir(deck),
            locate_collection(collection),
            now=_now(),
            options=options,
            confirm=confirm,
            wall_clock=_wall_clock(),
            on_wait=lambda folder: click.echo(f"waiting for another build using {folder} to finish ...", err=True),
        )
    except DeckgenError as exc:
        _fail(exc)
    for warning in done.warnings:
        click.echo(warning.format(), err=True)
    report_sync(done, dry_run)
    plan = done.result.plan
    if plan.failed or done.result.refused:
        sys.exit(1)


# --- authoring -------------------------------------------------------------------------------------


@main.command("new", help=_help("Append a note skeleton with a fresh unique id to a subdeck's file."))
@click.argument("prompt")
@SOURCE_ARG
@click.option(
    "--deck",
    "deck_name",
    help="Subdeck to add the note to, e.g. 'Deep Learning::Transformers' [default: the first]. "
    "A subdeck that does not exist yet gets a new file.",
)
@click.option(
    "--source", "source_option", type=click.Path(path_type=Path, file_okay=False), hidden=True
)  # deprecated: SOURCE is positional like in every other command
def new_cmd(prompt: str, source: Path | None, deck_name: str | None, source_option: Path | None) -> None:
    if source is not None and source_option is not None:
        raise click.UsageError("give SOURCE once: as the argument (--source is a deprecated alias)")
    if source_option is not None:
        click.echo("note: --source is deprecated; pass SOURCE as an argument: deckgen new PROMPT SOURCE", err=True)
    deck_path = _deck(source or source_option)
    try:
        deck, _, lock = load_deck(deck_path)
        note = new_note(deck, prompt, deck_name, reserved=lock_ids(lock))
    except DeckgenError as exc:
        _fail(exc)
    for path, text in note.create:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("x", encoding="utf-8", newline="\n") as fh:
                fh.write(text)
        except OSError as exc:
            _fail(DeckgenError(f"cannot create {path}: {exc.strerror or exc}"))
        click.echo(f"created {path}")
    try:
        data = appended(note.path.read_bytes(), note.text)
        _replace(note.path, data)
    except OSError as exc:
        _fail(DeckgenError(f"cannot add the note to {note.path}: {exc.strerror or exc}"))
    click.echo(f"added '{note.id}' to {note.path}")


@main.command("fix", help=_help("Repair the sources in place: --add-ids gives every note heading without an id one."))
@SOURCE_ARG
@click.option(
    "--add-ids", "add_ids_flag", is_flag=True, help="Add a readable, unique id under every note heading that has none."
)
@click.option("--dry-run", is_flag=True, help="Print the changes as a unified diff; write nothing.")
def fix_cmd(source: Path | None, add_ids_flag: bool, dry_run: bool) -> None:
    if not add_ids_flag:
        raise click.UsageError("say what to fix: --add-ids")
    deck_path = _deck(source)
    try:
        deck, _, lock = load_deck(deck_path)
        _, files, _ = read_sources(deck_path)
        fixes = add_ids(deck, files, reserved=lock_ids(lock))
        if not dry_run:
            for fix in fixes:
                _replace(fix.path, fix.new)
    except DeckgenError as exc:
        _fail(exc)
    except OSError as exc:
        _fail(DeckgenError(f"cannot write {exc.filename}: {exc.strerror or exc}"))
    for fix in fixes:
        if dry_run:
            click.echo(fix.diff(), nl=False)
        else:
            click.echo(f"{fix.path}: added {plural(len(fix.ids), 'id')}: {', '.join(fix.ids)}")
    total = sum(len(f.ids) for f in fixes)
    if not fixes:
        click.echo("every note heading has an id; nothing to do")
    elif dry_run:
        click.echo(f"dry run: would add {plural(total, 'id')} in {plural(len(fixes), 'file')}; nothing written")


@main.command("stats", help=_help("Count notes and cards per subdeck and notetype, notes per kind and tag."))
@SOURCE_ARG
@FORMAT_OPTION
@click.option("--top", type=click.IntRange(min=0), help="Show only the N most used tags.")
def stats_cmd(source: Path | None, fmt: str, top: int | None) -> None:
    deck_path = _deck(source)
    try:
        deck, _, _ = load_deck(deck_path)
    except DeckgenError as exc:
        _fail(exc)
    result = stats(deck, top)
    if fmt == "json":
        click.echo(json.dumps(stats_json(deck.name, result), indent=2, ensure_ascii=False))
        return
    tables = (("subdeck", result.subdecks, True), ("notetype", result.notetypes, True), ("kind", result.kinds, True))
    for title, rows, cards in (*tables, ("tag", result.tags, False)):
        width = max([len(r.name) for r in rows] + [len(title)])
        click.echo(f"{title:<{width}}  notes" + ("  cards" if cards else ""))
        for r in rows:
            click.echo(f"{r.name:<{width}}  {r.notes:>5}" + (f"  {r.cards:>5}" if cards else ""))
        click.echo("")
    click.echo(f"total  {result.notes} notes  {result.cards} cards")


# --- preview ---------------------------------------------------------------------------------------


@main.command("preview", help=_help("Write a static HTML page with every card's front and back."))
@SOURCE_ARG
@_out_option("preview", "Output folder for index.html, its images and MathJax.")
@click.option("--open", "open_page", is_flag=True, help="Open the page in the default browser.")
@click.option(
    "--mathjax",
    "mathjax_file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="A MathJax 3 tex-svg-full.js to use (default: the one from 'pip install deckgen[preview]').",
)
def preview_cmd(source: Path | None, out_dir: Path | None, open_page: bool, mathjax_file: Path | None) -> None:
    from deckgen.preview.page import find_mathjax, write_preview

    deck = _deck(source)
    out = out_dir or default_out_dir(deck) / "preview"
    try:
        result = write_preview(deck, out, now=_now(), mathjax=mathjax_file or find_mathjax())
    except DeckgenError as exc:
        _fail(exc)
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


@main.command("import")
@click.argument("files", nargs=-1, type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option(
    "--to",
    "source",
    type=click.Path(path_type=Path, file_okay=False),
    help="Deck folder to write the category files into (created, with a deckgen.toml, if missing). "
    "Default: the deck found as every command finds it, else ./source.",
)
@click.option(
    "--collection",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="An Anki collection file (collection.anki2; close Anki first) to import --deck from.",
)
@click.option("--deck", "deck_name", help="With --collection: the Anki deck to import, with its subdecks.")
@click.option("--dry-run", is_flag=True, help="Show the files and notes it would write; write nothing.")
def import_cmd(
    files: tuple[Path, ...], source: Path | None, collection: Path | None, deck_name: str | None, dry_run: bool
) -> None:
    """Turn Markdown Q&A lists (FILE.md) or Anki decks (FILE.apkg, --collection) into category files.

    Every note gets a readable id no note of SOURCE ever had; notes from Anki keep their GUID
    (<!-- guid: ... -->) so their reviews continue. Existing files are never overwritten.
    """
    from deckgen.importing import plan_sources_import, write_plan

    if source is None:
        try:
            source = find_deck(None)
        except DeckNotFound:
            source = Path(SOURCE_FOLDER)  # no deck yet: this import starts one

    if not files and collection is None:
        raise click.UsageError("give at least one FILE (.md or .apkg) or --collection PATH --deck NAME")
    if (collection is None) != (deck_name is None):
        raise click.UsageError("--collection and --deck go together: the collection file and the deck to import")
    for path in files:
        if path.suffix.lower() not in (".md", ".markdown", ".apkg"):
            raise click.BadParameter(f"{path}: give .md (Q&A lists) or .apkg (Anki) files", param_hint="FILES")
    try:
        plan, problems = plan_sources_import(files, source, collection, deck_name)
        for diagnostic in problems:
            click.echo(diagnostic.format(), err=True)
        if not plan.notes:
            click.echo("nothing to import; nothing written", err=True)
            sys.exit(1)
        for asked, given in plan.renamed_decks:
            click.echo(f"subdeck '{asked}' already exists; imported as '{given}'", err=True)
        for category in plan.categories:
            click.echo(f"  {category.path}  {category.deck}: {len(category.ids)} notes")
            if dry_run:
                for note_id, prompt in zip(category.ids, category.prompts, strict=True):
                    click.echo(f"    + {note_id}  {prompt}")
        if dry_run:
            click.echo(f"dry run: would write {len(plan.files)} files ({plan.notes} notes); nothing written")
            return
        write_plan(plan)
        click.echo(f"imported {plan.notes} notes into {source}")
        findings = check_sources(source)
    except DeckgenError as exc:
        _fail(exc)
        return
    for diagnostic in findings:
        click.echo(diagnostic.format(), err=True)
    errors = sum(d.severity is Severity.ERROR for d in findings)
    warnings = len(findings) - errors
    click.echo(f"check: {errors} errors, {warnings} warnings; next: deckgen build {source}")
    if errors:
        sys.exit(1)
