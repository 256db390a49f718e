"""deckgen sync on real Anki collections: one scenario (build, sync, review, edit every way, sync again)
whose snapshots the tests below read note by note."""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from anki.collection import Collection, ImportAnkiPackageOptions, ImportAnkiPackageRequest
from click.testing import CliRunner, Result

from conftest import T0, Anki, packages_loaded
from deckgen.anki import notetypes, sync
from deckgen.anki.collection import CollectionError, anki_base, locate_collection
from deckgen.anki.notetypes import BASIC_MODEL_ID, CLOZE_MODEL_ID
from deckgen.build.lock import Lock, _digest
from deckgen.build.pipeline import Compiled, build, compile_deck
from deckgen.cli import main

ROOT = "Sync Deck"
SYNC_UUID = "5b0c2d4e-0d3c-4c55-9a61-2f1b7f3f9a10"
FILTERED = "Custom Study Session"
SOURCES_IDS = ("edit", "move", "b2c", "rev", "del", "rename", "anki", "keep")
OTHER_DECKGEN_GUID = "another-deckgen-deck-note"  # a note of another deckgen deck, with the same id "q-edit"

SOURCES_1 = {
    "deckgen.toml": f'name = "Sync Deck"\nuuid = "{SYNC_UUID}"\n',
    "basics.md": """\
        ---
        deck: Basics
        order: 1
        ---

        ## What is edited?
        <!-- id: q-edit -->

        Old answer.

        ## What moves?
        <!-- id: q-move -->

        It moves to the tools.

        ## What becomes a cloze?
        <!-- id: q-b2c -->

        A basic note.

        ## What has a reverse?
        <!-- id: q-rev -->
        <!-- reverse -->

        A reverse card.

        ## What is deleted?
        <!-- id: q-del -->

        Soon gone.

        ## What is renamed?
        <!-- id: q-rename -->

        Same note, new id.

        ## What is edited in Anki?
        <!-- id: q-anki -->

        The source text.

        ## What stays?
        <!-- id: q-keep -->

        Nothing changes.
        """,
    "clozes.md": """\
        ---
        deck: Clozes
        order: 2
        ---

        ## What becomes basic?
        <!-- id: c-c2b -->
        <!-- cloze -->

        The {{c1::first}} and the {{c2::second}}.

        ## Loses a deletion
        <!-- id: c-drop -->
        <!-- cloze -->

        One {{c1::a}}, two {{c2::b}}, three {{c3::c}}.
        """,
    "tools.md": """\
        ---
        deck: Tools
        order: 3
        ---

        ## What is a hammer?
        <!-- id: t-keep -->

        A tool.
        """,
}

# Every edit kind at once: text, move to another file, subdeck rename, basic -> cloze, cloze -> basic,
# a reverse and a cloze deletion removed, a note deleted, an id renamed with was:.
EDITS = {
    "basics.md": (
        ("Old answer.", "New answer."),
        ("## What moves?\n<!-- id: q-move -->\n\nIt moves to the tools.\n\n", ""),
        (
            "<!-- id: q-b2c -->\n\nA basic note.",
            "<!-- id: q-b2c -->\n<!-- cloze -->\n\nA {{c1::cloze}} with {{c2::two}}.",
        ),
        ("<!-- id: q-rev -->\n<!-- reverse -->", "<!-- id: q-rev -->"),
        ("## What is deleted?\n<!-- id: q-del -->\n\nSoon gone.\n\n", ""),
        ("<!-- id: q-rename -->", "<!-- id: q-renamed; was: q-rename -->"),
    ),
    "clozes.md": (
        (
            "<!-- id: c-c2b -->\n<!-- cloze -->\n\nThe {{c1::first}} and the {{c2::second}}.",
            "<!-- id: c-c2b -->\n\nThe first and the second.",
        ),
        ("three {{c3::c}}.", "three c."),
    ),
    "tools.md": (
        ("deck: Tools", "deck: Toolbox"),
        ("A tool.\n", "A tool.\n\n## What moves?\n<!-- id: q-move -->\n\nIt moves to the tools.\n"),
    ),
}


@dataclass(frozen=True)
class CardSnap:
    id: int
    ord: int
    deck: str  # home deck
    current: str  # the deck it sits in now (a filtered deck, or its home deck)
    ivl: int
    due: int
    queue: int
    reps: int
    revlog: int


@dataclass(frozen=True)
class NoteSnap:
    nid: int
    guid: str
    notetype: str
    fields: dict[str, str]
    tags: tuple[str, ...]
    mod: int
    cards: tuple[CardSnap, ...]

    def card(self, ord_: int) -> CardSnap:
        (found,) = [c for c in self.cards if c.ord == ord_]
        return found


def snapshot(path: Path) -> dict[str, NoteSnap]:
    """Every note of the collection by GUID (deckgen's and the others), with cards and review counts."""
    col = Collection(str(path))
    try:
        out = {}
        for nid in col.find_notes(""):
            note = col.get_note(nid)
            cards = []
            for card in note.cards():
                revlog = col.db.scalar("select count() from revlog where cid = ?", card.id)
                home = card.odid or card.did
                name = col.decks.name(home)
                current = col.decks.name(card.did)
                cards.append(
                    CardSnap(card.id, card.ord, name, current, card.ivl, card.due, card.queue, card.reps, revlog)
                )
            out[note.guid] = NoteSnap(
                note.id,
                note.guid,
                note.note_type()["name"],  # type: ignore[index]
                dict(note.items()),
                tuple(sorted(note.tags)),
                note.mod,
                tuple(sorted(cards, key=lambda c: c.ord)),
            )
        return out
    finally:
        col.close()


def schema_mod(path: Path) -> int:
    """The collection's schema time: when it changes, AnkiWeb needs a one-way (full) sync."""
    with closing(Collection(str(path))) as col:
        return int(col.db.scalar("select scm from col"))


def by_id(snap: dict[str, NoteSnap], note_id: str) -> NoteSnap:
    (found,) = [n for n in snap.values() if n.fields.get("Id") == note_id and n.guid != OTHER_DECKGEN_GUID]
    return found


def write_sources(source: Path, files: dict[str, str]) -> None:
    source.mkdir(exist_ok=True)
    for name, text in files.items():
        (source / name).write_text(textwrap.dedent(text), encoding="utf-8")


def apply_edits(source: Path) -> None:
    for name, edits in EDITS.items():
        path = source / name
        text = path.read_text(encoding="utf-8")
        for old, new in edits:
            assert old in text, (name, old)
            text = text.replace(old, new)
        path.write_text(text, encoding="utf-8")


def review_everything(path: Path) -> int:
    """Answer every card once, cycling through Again, Hard, Good and Easy."""
    col = Collection(str(path))
    try:
        cids = col.find_cards(f'"deck:{ROOT}"')
        for i, cid in enumerate(sorted(cids)):
            card = col.get_card(cid)
            card.start_timer()
            col.sched.answerCard(card, (i % 4) + 1)  # type: ignore[arg-type]
        return len(cids)
    finally:
        col.close()


def run(*args: str) -> Result:
    result = CliRunner().invoke(main, list(args))
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result


def file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class Scenario:
    source: Path
    out: Path
    col: Path
    first: Result
    reviewed: dict[str, NoteSnap]  # after the first sync and the reviews
    edited: dict[str, NoteSnap]  # after the edits made inside Anki
    dry: Result
    dry_same_bytes: bool
    archive: Result
    archived: dict[str, NoteSnap]
    delete: Result
    deleted: dict[str, NoteSnap]
    forced: Result
    final: dict[str, NoteSnap]
    other_guids: tuple[str, ...]
    extra: dict[str, object] = field(default_factory=dict)


def _add_other_decks(path: Path) -> tuple[str, ...]:
    """Notes that are not this deck's: a stock Basic note, and one of deckgen's notetype from another deck."""
    col = Collection(str(path))
    try:
        stock = col.new_note(col.models.by_name("Basic"))  # type: ignore[arg-type]
        stock["Front"], stock["Back"] = "Other front", "Other back"
        col.add_note(stock, col.decks.id("Other"))  # type: ignore[arg-type]
        foreign = col.new_note(col.models.get(BASIC_MODEL_ID))  # type: ignore[arg-type]
        foreign.guid = OTHER_DECKGEN_GUID
        foreign["Prompt"], foreign["Answer"], foreign["Id"] = "Another deck", "Its answer", "q-edit"
        col.add_note(foreign, col.decks.id("Another Deck"))  # type: ignore[arg-type]
        return (stock.guid, foreign.guid)
    finally:
        col.close()


def _edit_inside_anki(path: Path) -> None:
    col = Collection(str(path))
    try:
        (nid,) = col.find_notes('"Id:q-anki"')
        note = col.get_note(nid)
        note["Answer"] = "My own words"
        col.update_note(note)
        (nid,) = col.find_notes('"Id:q-keep"')
        note = col.get_note(nid)
        note.tags.append("mytag")
        col.update_note(note)
        # custom study holds t-keep's card while its subdeck is renamed
        filtered = col.decks.get(col.decks.new_filtered(FILTERED))
        assert filtered is not None
        filtered["terms"][0][0] = f'"deck:{ROOT}::Tools"'
        col.decks.save(filtered)
        col.sched.rebuild_filtered_deck(filtered["id"])
    finally:
        col.close()


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    tmp = tmp_path_factory.mktemp("sync")
    source, out, col = tmp / "source", tmp / "build", tmp / "collection.anki2"
    write_sources(source, SOURCES_1)
    Collection(str(col)).close()
    first = run("sync", str(source), "--collection", str(col), "-o", str(out))
    other = _add_other_decks(col)  # after the first sync, which created deckgen's notetypes
    review_everything(col)
    reviewed = snapshot(col)
    apply_edits(source)
    _edit_inside_anki(col)
    edited = snapshot(col)
    scm = [schema_mod(col)]
    before = file_hash(col)
    dry = run("sync", str(source), "--collection", str(col), "-o", str(out), "--dry-run")
    dry_same = file_hash(col) == before
    archive = run("sync", str(source), "--collection", str(col), "-o", str(out), "--prune", "archive")
    archived = snapshot(col)
    scm.append(schema_mod(col))
    with closing(Collection(str(col))) as opened:
        decks = sorted(d.name for d in opened.decks.all_names_and_ids())
    delete = run("sync", str(source), "--collection", str(col), "-o", str(out), "--prune", "delete", "--yes")
    deleted = snapshot(col)
    scm.append(schema_mod(col))
    forced = run("sync", str(source), "--collection", str(col), "-o", str(out), "--force")
    final = snapshot(col)
    yield Scenario(
        source,
        out,
        col,
        first,
        reviewed,
        edited,
        dry,
        dry_same,
        archive,
        archived,
        delete,
        deleted,
        forced,
        final,
        other,
        {"decks": decks, "scm": scm},
    )


def cards_unchanged(before: NoteSnap, after: NoteSnap, ords: tuple[int, ...]) -> None:
    for o in ords:
        b, a = before.card(o), after.card(o)
        assert (a.id, a.ivl, a.due, a.reps, a.revlog) == (b.id, b.ivl, b.due, b.reps, b.revlog), (
            before.fields["Id"],
            o,
        )
        assert b.revlog == 1  # every card was reviewed once before the edits


# --- first sync -------------------------------------------------------------------------------


def test_first_sync_adds_every_note_in_its_subdeck(scenario: Scenario) -> None:
    assert scenario.first.exit_code == 0, scenario.first.output
    assert "11 added, 0 updated" in scenario.first.output
    ours = {n.fields["Id"]: n for n in scenario.reviewed.values() if n.guid not in scenario.other_guids}
    assert len(ours) == 11
    assert by_id(scenario.reviewed, "q-rev").notetype == "deckgen Basic"
    assert [c.ord for c in by_id(scenario.reviewed, "q-rev").cards] == [0, 1]
    assert [c.ord for c in by_id(scenario.reviewed, "c-drop").cards] == [0, 1, 2]
    assert {c.deck for c in by_id(scenario.reviewed, "t-keep").cards} == {f"{ROOT}::Tools"}
    assert (scenario.out / "sync-deck.apkg").is_file() and (scenario.source / "deckgen.lock").is_file()
    backups = scenario.col.parent / "backups"
    assert f"(Anki's backup made first, in {backups})" in scenario.first.output
    assert list(backups.glob("*.colpkg"))


# --- dry run ----------------------------------------------------------------------------------


def test_dry_run_shows_the_whole_plan_and_leaves_the_collection_byte_identical(scenario: Scenario) -> None:
    out = scenario.dry.output
    assert scenario.dry_same_bytes
    assert scenario.dry.exit_code == 1  # the edit made inside Anki is a conflict
    assert "dry run: nothing changed" in out
    assert "the next AnkiWeb sync asks for a one-way upload" in out
    assert "q-edit  fields: Answer" in out
    assert "q-b2c  notetype → deckgen Cloze" in out and "c-c2b  notetype → deckgen Basic" in out
    assert "q-move  tags; moved to Sync Deck::Toolbox" in out and "t-keep  tags; moved to Sync Deck::Toolbox" in out
    assert "q-renamed  fields: Id; renamed from q-rename, history kept" in out
    assert "q-rev  card 2 removed" in out and "c-drop  card 3 removed" in out and "c-c2b  card 2 removed" in out
    assert "    q-del" in out  # the orphan, reported only
    assert "q-anki: edited inside Anki; left untouched" in out
    assert "Answer: in Anki 'My own words', in the sources 'The source text.'" in out
    assert "0 added, 8 updated, 2 moved, 2 notetype changed, 3 cards removed, 1 orphans, 1 conflicts" in out


# --- the sync that applies every edit (--prune archive) ---------------------------------------


def test_edited_text_updates_in_place_and_keeps_reviews(scenario: Scenario) -> None:
    before, after = by_id(scenario.edited, "q-edit"), by_id(scenario.archived, "q-edit")
    assert after.nid == before.nid and "New answer." in after.fields["Answer"]
    cards_unchanged(before, after, (0,))


def test_moved_note_and_renamed_subdeck_move_their_cards_with_history(scenario: Scenario) -> None:
    for note_id in ("q-move", "t-keep"):
        before, after = by_id(scenario.edited, note_id), by_id(scenario.archived, note_id)
        assert [c.deck for c in after.cards] == [f"{ROOT}::Toolbox"]
        cards_unchanged(before, after, (0,))
    # a card in a filtered deck stays there; only the deck it returns to changes
    assert by_id(scenario.edited, "t-keep").cards[0].current == FILTERED
    assert by_id(scenario.archived, "t-keep").cards[0].current == FILTERED
    assert by_id(scenario.archived, "q-move").cards[0].current == f"{ROOT}::Toolbox"
    assert "category::toolbox" in by_id(scenario.archived, "t-keep").tags
    assert "- Sync Deck::Tools  (subdeck no longer in the sources, left empty: removed)" in scenario.archive.output
    subdecks = [f"{ROOT}::{d}" for d in ("Basics", "Clozes", "Toolbox", "Orphans")]
    assert scenario.extra["decks"] == sorted(["Default", "Other", "Another Deck", FILTERED, ROOT, *subdecks])


def test_basic_to_cloze_keeps_the_reviewed_card_and_adds_the_new_deletion(scenario: Scenario) -> None:
    before, after = by_id(scenario.edited, "q-b2c"), by_id(scenario.archived, "q-b2c")
    assert after.nid == before.nid and after.notetype == "deckgen Cloze"
    assert "{{c1::cloze}}" in after.fields["Text"]
    assert [c.ord for c in after.cards] == [0, 1]
    cards_unchanged(before, after, (0,))
    assert after.card(1).revlog == 0


def test_only_a_notetype_change_needs_a_full_ankiweb_sync(scenario: Scenario) -> None:
    before, after_conversion, after_delete = scenario.extra["scm"]  # type: ignore[misc]
    assert after_conversion > before  # basic <-> cloze: Anki's Change Note Type modifies the schema
    assert after_delete == after_conversion  # updates, moves, card removal, prune: a normal sync


def test_cloze_to_basic_keeps_c1_as_the_forward_card_and_removes_c2(scenario: Scenario) -> None:
    before, after = by_id(scenario.edited, "c-c2b"), by_id(scenario.archived, "c-c2b")
    assert after.nid == before.nid and after.notetype == "deckgen Basic"
    assert "The first and the second." in after.fields["Answer"]
    assert [c.ord for c in after.cards] == [0]
    cards_unchanged(before, after, (0,))


def test_removed_reverse_and_cloze_deletion_remove_only_those_cards(scenario: Scenario) -> None:
    rev_before, rev_after = by_id(scenario.edited, "q-rev"), by_id(scenario.archived, "q-rev")
    assert [c.ord for c in rev_after.cards] == [0]
    cards_unchanged(rev_before, rev_after, (0,))
    drop_before, drop_after = by_id(scenario.edited, "c-drop"), by_id(scenario.archived, "c-drop")
    assert [c.ord for c in drop_after.cards] == [0, 1]
    cards_unchanged(drop_before, drop_after, (0, 1))


def test_renamed_id_keeps_its_note_and_history(scenario: Scenario) -> None:
    before = by_id(scenario.edited, "q-rename")
    after = scenario.archived[before.guid]
    assert after.fields["Id"] == "q-renamed" and after.nid == before.nid
    cards_unchanged(before, after, (0,))


def test_archive_suspends_tags_and_moves_the_orphan_with_history(scenario: Scenario) -> None:
    before, after = by_id(scenario.edited, "q-del"), by_id(scenario.archived, "q-del")
    assert "deckgen::orphan" in after.tags
    assert [(c.deck, c.queue) for c in after.cards] == [(f"{ROOT}::Orphans", -1)]
    assert after.card(0).revlog == 1 and after.card(0).ivl == before.card(0).ivl
    assert "1 orphans archived" in scenario.archive.output


def test_edit_inside_anki_is_reported_field_by_field_and_kept(scenario: Scenario) -> None:
    assert scenario.archive.exit_code == 1
    assert "q-anki: edited inside Anki; left untouched" in scenario.archive.output
    before, after = by_id(scenario.edited, "q-anki"), by_id(scenario.archived, "q-anki")
    assert after == before
    assert by_id(scenario.deleted, "q-anki") == before  # and again at the next sync


def test_tags_added_inside_anki_are_kept(scenario: Scenario) -> None:
    keep = by_id(scenario.archived, "q-keep")
    assert "mytag" in keep.tags and "category::basics" in keep.tags
    assert keep == by_id(scenario.edited, "q-keep")  # nothing else to change


def test_no_duplicates_and_other_decks_untouched(scenario: Scenario) -> None:
    for snap in (scenario.archived, scenario.deleted, scenario.final):
        ids = [n.fields["Id"] for n in snap.values() if "Id" in n.fields and n.guid not in scenario.other_guids]
        assert len(ids) == len(set(ids))
        for guid in scenario.other_guids:
            assert snap[guid] == scenario.reviewed[guid]
    assert len(scenario.archived) == 2 + 11


def test_every_surviving_card_keeps_its_schedule_through_all_syncs(scenario: Scenario) -> None:
    before = {c.id: c for n in scenario.edited.values() for c in n.cards}
    survived = 0
    for note in scenario.final.values():
        for card in note.cards:
            if card.id in before:
                b = before[card.id]
                assert (card.ivl, card.due, card.reps, card.revlog) == (b.ivl, b.due, b.reps, b.revlog)
                survived += 1
    assert survived == 15 - 3 - 1 + 2  # this deck's cards - removed ones - the deleted orphan's + other decks' cards


# --- --prune delete --yes, then --force --------------------------------------------------------


def test_prune_delete_removes_the_orphan_only(scenario: Scenario) -> None:
    assert "1 orphans deleted" in scenario.delete.output
    orphan = by_id(scenario.archived, "q-del")
    assert orphan.guid not in scenario.deleted
    assert set(scenario.deleted) == set(scenario.archived) - {orphan.guid}


def test_force_overwrites_the_edit_made_inside_anki(scenario: Scenario) -> None:
    assert scenario.forced.exit_code == 0, scenario.forced.output
    assert "overwrote edits made in Anki (--force)" in scenario.forced.output
    before, after = by_id(scenario.deleted, "q-anki"), by_id(scenario.final, "q-anki")
    assert "The source text." in after.fields["Answer"]
    cards_unchanged(before, after, (0,))


def test_plain_import_after_sync_creates_no_copies_or_duplicates(scenario: Scenario, tmp_path: Path) -> None:
    copy = tmp_path / "collection.anki2"
    copy.write_bytes(scenario.col.read_bytes())
    col = Collection(str(copy))
    try:
        request = ImportAnkiPackageRequest(
            package_path=str(scenario.out / "sync-deck.apkg"), options=ImportAnkiPackageOptions()
        )
        log = col.import_anki_package(request).log
        assert (len(log.new), len(log.conflicting), len(log.missing_notetype)) == (0, 0, 0)
        names = sorted(n.name for n in col.models.all_names_and_ids() if n.name.startswith("deckgen"))
        assert names == ["deckgen Basic", "deckgen Cloze"]
    finally:
        col.close()


# --- refusals and failures ----------------------------------------------------------------------


def test_collection_open_in_another_process_is_refused_and_unchanged(scenario: Scenario) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"from anki.collection import Collection; c = Collection({str(scenario.col)!r}); "
            "print('open', flush=True); input()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "open\n"
        before = file_hash(scenario.col)
        result = run("sync", str(scenario.source), "--collection", str(scenario.col), "-o", str(scenario.out))
        assert result.exit_code == 1
        assert "is in use" in result.output and "close Anki" in result.output and "nothing was changed" in result.output
        assert file_hash(scenario.col) == before
    finally:
        holder.communicate("\n", timeout=30)


def private_copy(scenario: Scenario, tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the scenario's sources and collection for a test that changes them."""
    source, col = tmp_path / "source", tmp_path / "collection.anki2"
    shutil.copytree(scenario.source, source)
    col.write_bytes(scenario.col.read_bytes())
    return source, col


@pytest.mark.parametrize("failure", [RuntimeError, KeyboardInterrupt])
def test_failure_or_ctrl_c_mid_sync_rolls_everything_back(
    scenario: Scenario, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, failure: type[BaseException]
) -> None:
    source, copy = private_copy(scenario, tmp_path)
    basics = source / "basics.md"
    basics.write_text(basics.read_text(encoding="utf-8").replace("New answer.", "Newer answer."), encoding="utf-8")
    before = snapshot(copy)
    lock = (source / "deckgen.lock").read_bytes()
    steps_run = []

    def broken(col: Collection, plan: sync.SyncPlan) -> None:
        steps_run.append(len(plan.updated))
        raise failure("injected failure")

    monkeypatch.setattr(sync, "_move_cards", broken)  # runs after notes were updated and cards removed
    with pytest.raises(failure, match="injected"):
        sync.sync_deck(source, tmp_path / "out", copy, now=2_000_000_000, options=sync.SyncOptions())
    assert steps_run == [1]
    assert snapshot(copy) == before
    assert (source / "deckgen.lock").read_bytes() == lock and not (tmp_path / "out" / "sync-deck.apkg").exists()
    monkeypatch.undo()
    sync.sync_deck(source, tmp_path / "out", copy, now=2_000_000_000, options=sync.SyncOptions())
    assert "Newer answer." in by_id(snapshot(copy), "q-edit").fields["Answer"]


KILLED_MID_SYNC = """
import sys, time
from pathlib import Path
from deckgen.anki import sync

def stall(col, plan):
    print("mid-sync", flush=True)
    time.sleep(120)

sync._move_cards = stall
sync.sync_deck(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), now=2_000_000_000, options=sync.SyncOptions())
"""


def test_kill_9_mid_sync_leaves_the_collection_as_it_was(scenario: Scenario, tmp_path: Path) -> None:
    source, copy = private_copy(scenario, tmp_path)
    basics = source / "basics.md"
    basics.write_text(basics.read_text(encoding="utf-8").replace("New answer.", "Killed answer."), encoding="utf-8")
    before = snapshot(copy)
    args = [sys.executable, "-c", KILLED_MID_SYNC, str(source), str(tmp_path / "out"), str(copy)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "mid-sync\n"
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert snapshot(copy) == before  # Anki recovers from the WAL without the uncommitted transaction


def test_notetype_changed_inside_anki_is_reported_never_copied(scenario: Scenario, tmp_path: Path) -> None:
    source, copy = private_copy(scenario, tmp_path)
    col = Collection(str(copy))
    try:
        nt = col.models.get(CLOZE_MODEL_ID)  # type: ignore[arg-type]
        assert nt is not None
        col.models.add_field(nt, col.models.new_field("Mnemonic"))
        col.models.update_dict(nt)
    finally:
        col.close()
    clozes = source / "clozes.md"
    clozes.write_text(clozes.read_text(encoding="utf-8").replace("two {{c2::b}}", "two {{c2::bee}}"), encoding="utf-8")
    before = snapshot(copy)
    result = run("sync", str(source), "--collection", str(copy), "-o", str(tmp_path / "out"), "--force")
    assert result.exit_code == 1
    assert "notetype 'deckgen Cloze' was changed inside Anki (added field(s) 'Mnemonic')" in result.output
    assert "c-drop: its notetype was changed inside Anki" in result.output
    after = snapshot(copy)
    assert by_id(after, "c-drop") == by_id(before, "c-drop")
    col = Collection(str(copy))
    try:
        assert sorted(n.name for n in col.models.all_names_and_ids() if "deckgen" in n.name) == [
            "deckgen Basic",
            "deckgen Cloze",
        ]
    finally:
        col.close()


def test_a_look_changed_inside_anki_is_kept_until_deckgens_changes_and_a_foreign_notetype_is_reported(
    scenario: Scenario, tmp_path: Path
) -> None:
    source, copy = private_copy(scenario, tmp_path)
    with closing(Collection(str(copy))) as col:
        nt = col.models.get(BASIC_MODEL_ID)  # type: ignore[arg-type]
        assert nt is not None
        nt["css"] = ".card { color: red }"
        nt["tmpls"][0]["qfmt"] = "{{Prompt}} (my template)"
        col.models.update_dict(nt)
        (nid,) = col.find_notes('"Id:q-keep"')
        request = col.models.change_notetype_info(
            old_notetype_id=BASIC_MODEL_ID,  # type: ignore[arg-type]
            new_notetype_id=col.models.id_for_name("Basic"),  # type: ignore[arg-type]
        ).input
        request.note_ids.append(nid)
        col.models.change_notetype_of_notes(request)
    before = snapshot(copy)
    result = run("sync", str(source), "--collection", str(copy), "-o", str(tmp_path / "out"))
    assert result.exit_code == 1
    assert "= notetype deckgen Basic  (its look was changed inside Anki" in result.output
    assert "q-keep: the collection holds this note with notetype 'Basic'" in result.output
    assert set(snapshot(copy)) == set(before)  # no second q-keep
    with closing(Collection(str(copy))) as col:
        nt = col.models.get(BASIC_MODEL_ID)  # type: ignore[arg-type]
        assert nt is not None and nt["css"] == ".card { color: red }"
        # as if an older deckgen had written this look: deckgen's look has changed since, so it wins
        key = sync.record_key(SYNC_UUID)
        record = col.get_config(key)
        record["notetypes"][str(BASIC_MODEL_ID)] = sync._held_notetype(nt).look
        col.set_config(key, record)
    result = run("sync", str(source), "--collection", str(copy), "-o", str(tmp_path / "out"))
    assert "~ notetype deckgen Basic  (templates and CSS updated in place)" in result.output
    with closing(Collection(str(copy))) as col:
        nt = col.models.get(BASIC_MODEL_ID)  # type: ignore[arg-type]
        assert nt is not None and nt["css"] == notetypes.basic().css
        assert nt["tmpls"][0]["qfmt"] == notetypes.basic().templates[0].front
        assert sum("deckgen" in m.name for m in col.models.all_names_and_ids()) == 2


def test_large_prune_needs_yes_even_for_archive(tmp_path: Path) -> None:
    source, col = tmp_path / "source", tmp_path / "collection.anki2"
    write_sources(source, SOURCES_1)
    Collection(str(col)).close()
    assert run("sync", str(source), "--collection", str(col), "-o", str(tmp_path / "b")).exit_code == 0
    (source / "tools.md").unlink()
    (source / "clozes.md").unlink()  # 3 of 11 notes become orphans
    before = file_hash(col)
    refused = run("sync", str(source), "--collection", str(col), "-o", str(tmp_path / "b"), "--prune", "archive")
    assert refused.exit_code == 1 and "run again with --yes" in refused.output
    assert file_hash(col) == before
    done = run("sync", str(source), "--collection", str(col), "-o", str(tmp_path / "b"), "--prune", "archive", "--yes")
    assert done.exit_code == 0 and "3 orphans archived" in done.output
    delete = run("sync", str(source), "--collection", str(col), "-o", str(tmp_path / "b"), "--prune", "delete")
    assert delete.exit_code == 1 and "refused: this sync deletes 3 note(s)" in delete.output
    archived = by_id(snapshot(col), "t-keep")
    assert archived.cards[0].queue == -1 and "deckgen::orphan" in archived.tags
    restored_tools = SOURCES_1["tools.md"].replace("<!-- id: t-keep -->", "<!-- id: t-keep; restore -->")
    write_sources(source, {"tools.md": restored_tools})  # the note comes back
    restored = run("sync", str(source), "--collection", str(col), "-o", str(tmp_path / "b"))
    assert "t-keep  tags; moved to Sync Deck::Tools; restored from the orphans" in restored.output
    back = by_id(snapshot(col), "t-keep")
    assert back.nid == archived.nid and "deckgen::orphan" not in back.tags
    assert [(c.deck, c.queue) for c in back.cards] == [(f"{ROOT}::Tools", 0)]
    asked: list[str] = []

    def confirm(plan: sync.SyncPlan) -> bool:  # what the CLI asks on a terminal
        asked.append(plan.needs_yes)
        return True

    options = sync.SyncOptions(prune=sync.Prune.DELETE)
    done_sync = sync.sync_deck(source, tmp_path / "b", col, now=T0 + 10, options=options, confirm=confirm)
    assert asked == ["deletes 2 note(s) and their review history"] and done_sync.result.applied
    assert {n.fields.get("Id") for n in snapshot(col).values()} == {f"q-{x}" for x in SOURCES_IDS} | {"t-keep"}


def test_first_sync_onto_an_imported_deck_tells_anki_edits_from_deckgen_builds(tmp_path: Path) -> None:
    source, col_path = tmp_path / "source", tmp_path / "collection.anki2"
    write_sources(source, SOURCES_1)
    built = build(source, tmp_path / "b", now=T0)
    anki = Anki(col_path)
    try:
        assert anki.import_package(built.output).new == 11
        note = anki.note_by_id_field("q-anki")
        note["Answer"] = "Edited on my phone"
        anki.col.update_note(note)
    finally:
        anki.close()
    review_everything(col_path)
    before = snapshot(col_path)
    basics = source / "basics.md"
    basics.write_text(basics.read_text(encoding="utf-8").replace("Old answer.", "New answer."), encoding="utf-8")
    result = run("sync", str(source), "--collection", str(col_path), "-o", str(tmp_path / "b"))
    assert result.exit_code == 1
    assert "0 added, 1 updated, 0 moved, 0 notetype changed, 0 cards removed, 0 orphans, 1 conflicts" in result.output
    assert "q-anki: edited inside Anki" in result.output and "'Edited on my phone'" in result.output
    after = snapshot(col_path)
    assert set(after) == set(before)
    assert "New answer." in by_id(after, "q-edit").fields["Answer"]
    cards_unchanged(by_id(before, "q-edit"), by_id(after, "q-edit"), (0,))
    assert by_id(after, "q-anki") == by_id(before, "q-anki")
    again = run("sync", str(source), "--collection", str(col_path), "-o", str(tmp_path / "b"))
    assert "0 updated" in again.output and "1 conflicts" in again.output  # every other note is now recorded


# --- finding the collection -----------------------------------------------------------------------


def test_a_file_that_is_not_a_collection_is_refused_clearly(tmp_path: Path) -> None:
    (tmp_path / "source").mkdir()
    write_sources(tmp_path / "source", SOURCES_1)
    bad = tmp_path / "notes.anki2"
    bad.write_bytes(b"not a database, just some text that is long enough" * 100)
    result = run("sync", str(tmp_path / "source"), "--collection", str(bad), "-o", str(tmp_path / "out"))
    assert result.exit_code == 1 and f"cannot open {bad} as an Anki collection" in result.output
    assert not (tmp_path / "out" / "sync-deck.apkg").exists()


def test_collection_found_by_path_folder_or_profile_name(tmp_path: Path) -> None:
    profile = tmp_path / "Anki2" / "User 1"
    profile.mkdir(parents=True)
    (profile / "collection.anki2").write_bytes(b"")
    expected = profile / "collection.anki2"
    assert locate_collection(str(expected)) == expected
    assert locate_collection(str(profile)) == expected
    assert locate_collection("User 1", base=tmp_path / "Anki2") == expected
    with pytest.raises(CollectionError, match=r"profiles in .*: User 1"):
        locate_collection("User 2", base=tmp_path / "Anki2")


@pytest.mark.parametrize(
    ("platform", "env", "expected"),
    [
        ("linux", {"XDG_DATA_HOME": "/x"}, Path("/x/Anki2")),
        ("linux", {}, Path.home() / ".local/share/Anki2"),
        ("darwin", {}, Path.home() / "Library/Application Support/Anki2"),
        ("win32", {"APPDATA": "C:/Users/u/AppData/Roaming"}, Path("C:/Users/u/AppData/Roaming/Anki2")),
        ("linux", {"ANKI_BASE": "/base"}, Path("/base")),
    ],
)
def test_anki_base_follows_ankis_own_rules(platform: str, env: dict[str, str], expected: Path) -> None:
    assert anki_base(env, platform) == expected


def test_plain_build_never_imports_anki(tmp_path: Path) -> None:
    write_sources(tmp_path / "source", SOURCES_1)
    assert packages_loaded(["build", str(tmp_path / "source"), "-o", str(tmp_path / "out")], ["anki"]) == []


# --- the planning rules, without a collection -----------------------------------------------------


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Compiled:
    source = tmp_path_factory.mktemp("plan") / "source"
    write_sources(source, SOURCES_1)
    return compile_deck(source, T0)


def held_as_built(compiled: Compiled, note_id: str, **changes: object) -> tuple[sync.Held, str]:
    """The collection holding ``note_id`` exactly as built (then ``changes``), and nothing else."""
    (rn,) = [rn for rn in compiled.notes if rn.note.id == note_id]
    guid = compiled.new_lock.notes[note_id].guid
    cards = tuple(sync.HeldCard(100 + o, o, rn.deck, False, 1) for o in rn.card_ords)
    note = sync.HeldNote(1, guid, rn.notetype.id, dict(zip(rn.notetype.fields, rn.fields, strict=True)), rn.tags, cards)
    note = dataclasses.replace(note, **changes)  # type: ignore[arg-type]
    nts = {
        nt.id: sync.HeldNotetype(
            nt.id, nt.name, nt.fields, tuple((t.name, t.front, t.back) for t in nt.templates), nt.css
        )
        for nt in notetypes.all_notetypes()
    }
    return sync.Held(nts, {guid: note}, {}, {}), guid


def record_of(note: sync.HeldNote, tags: tuple[str, ...]) -> sync.Record:
    """What sync would have recorded after writing ``note`` as it is held."""
    return sync.Record({n: _digest(v) for n, v in note.fields.items() if v}, tags)


def plan_for(compiled: Compiled, held: sync.Held, lock: Lock | None = None, **kwargs: Any) -> sync.SyncPlan:
    notes = [(rn, compiled.new_lock.notes[rn.note.id].guid) for rn in compiled.notes if rn.note.id == "q-edit"]
    return sync.plan_sync(ROOT, notes, lock or compiled.lock, compiled.new_lock, held, (), **kwargs)


def test_unrecorded_note_matching_the_build_is_in_step_and_gets_a_record(compiled: Compiled) -> None:
    held, guid = held_as_built(compiled, "q-edit")
    plan = plan_for(compiled, held)
    assert not plan.update and not plan.conflicts and not plan.changes
    assert set(plan.records) == {guid}


def test_unrecorded_note_differing_from_every_build_is_a_conflict(compiled: Compiled) -> None:
    held, _ = held_as_built(compiled, "q-edit")
    note = held.notes[next(iter(held.notes))]
    edited = dataclasses.replace(note, fields={**note.fields, "Answer": "<p>mine</p>"})
    plan = plan_for(compiled, dataclasses.replace(held, notes={note.guid: edited}))
    assert [(c.id, [f.field for f in c.fields]) for c in plan.conflicts] == [("q-edit", ["Answer"])]
    forced = plan_for(compiled, dataclasses.replace(held, notes={note.guid: edited}), force=True)
    assert [u.fields for u in forced.update] == [("Answer",)] and forced.update[0].forced


def test_recorded_note_edited_to_the_old_value_is_a_conflict_but_the_record_decides(compiled: Compiled) -> None:
    held, guid = held_as_built(compiled, "q-edit")
    note = held.notes[guid]
    record = record_of(note, note.tags)
    # the build changed Answer since sync last wrote it: an update, not a conflict
    old = dataclasses.replace(note, fields={**note.fields, "Answer": "<p>Older answer.</p>"})
    stale = {guid: sync.Record({**record.fields, "Answer": _digest("<p>Older answer.</p>")}, note.tags)}
    plan = plan_for(compiled, dataclasses.replace(held, notes={guid: old}, records=stale))
    assert not plan.conflicts and [u.fields for u in plan.update] == [("Answer",)]
    # the same value, but sync last wrote something else: edited inside Anki
    plan = plan_for(compiled, dataclasses.replace(held, notes={guid: old}, records={guid: record}))
    assert [c.id for c in plan.conflicts] == ["q-edit"] and not plan.update


@pytest.mark.parametrize(
    ("held_tags", "recorded", "expected"),
    [
        (("leech", "mine"), None, ("leech",)),  # no record: only Anki's own tags are known not to be deckgen's
        (("leech", "mine", "old-deckgen-tag"), ("old-deckgen-tag",), ("leech", "mine")),
        (("deckgen::orphan",), ("x",), ()),
    ],
)
def test_tags_added_inside_anki_survive(
    compiled: Compiled, held_tags: tuple[str, ...], recorded: tuple[str, ...] | None, expected: tuple[str, ...]
) -> None:
    held, guid = held_as_built(compiled, "q-edit")
    note = held.notes[guid]
    (rn,) = [rn for rn in compiled.notes if rn.note.id == "q-edit"]
    records = (
        {} if recorded is None else {guid: sync.Record({n: _digest(v) for n, v in note.fields.items() if v}, recorded)}
    )
    plan = plan_for(
        compiled, dataclasses.replace(held, notes={guid: dataclasses.replace(note, tags=held_tags)}, records=records)
    )
    (update,) = plan.update
    assert update.tags == tuple(sorted((*rn.tags, *expected), key=str.casefold))
