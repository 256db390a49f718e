"""Problem 6: edits Anki's importer would not apply are caught from the lock (real Anki, default options)."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from conftest import T0, Anki, build_at, edit, imported_and_reviewed, refused, state
from deckgen.build.hazards import HazardKind
from deckgen.build.lock import LOCK_NAME
from deckgen.build.pipeline import compile_deck
from deckgen.cli import main


def _warnings(result: object) -> list[str]:
    return [f"{d.location.path.name}:{d.location.line}:{d.location.col} {d.rule}" for d in result.compiled.warnings]  # type: ignore[attr-defined]


def test_notetype_change_is_refused_with_the_ways_out(sample: Path, out_dir: Path, anki: Anki) -> None:
    before = imported_and_reviewed(sample, out_dir, anki)
    tags = "<!-- tags: topic::tools lang::python -->\n"
    edit(sample / "general.md", f"{tags}\nPython for", f"{tags}<!-- cloze -->\n\n{{{{c1::Python}}}} for")
    lock_before = (sample / LOCK_NAME).read_bytes()
    assert refused(sample, out_dir, T0 + 1) == ("general.md:15:1 notetype-changed",)
    # a caller that converts notes itself (deckgen sync) gets the change as data instead of an error
    compiled = compile_deck(sample, T0 + 1, accept_notetype_changes=True)
    assert compiled.errors == ()
    (hazard,) = compiled.diff.hazards
    assert (hazard.kind, hazard.note_id, hazard.old, hazard.new) == (
        HazardKind.NOTETYPE_CHANGED,
        "gen-languages",
        "1738425901",
        "1738425902",
    )
    assert hazard.guid == compiled.lock.notes["gen-languages"].guid
    # what the error says is true: a package built anyway is "conflicting" for Anki, the old text stays
    forced = build_at(sample, out_dir.parent / "forced", now=T0 + 1, accept_notetype_changes=True)
    log = anki.import_package(forced.output)
    assert (log.new, log.updated, log.conflicting) == (0, 0, 1)
    assert anki.note_by_id_field("gen-languages").note_type()["name"] == "deckgen Basic"
    (sample / LOCK_NAME).write_bytes(lock_before)  # back to the lock the collection matches
    # the other way out: a new id makes a new note; the old one stays (an orphan), nothing else moves
    edit(sample / "general.md", "<!-- id: gen-languages -->\n", "<!-- id: gen-languages-cloze -->\n")
    result = build_at(sample, out_dir, now=T0 + 2)
    assert result.compiled.diff.orphans == ("gen-languages",)
    log = anki.import_package(result.output)
    assert (log.new, log.updated, log.conflicting) == (1, 0, 0)
    after = state(anki)
    assert after.duplicates == set()
    assert after.revlog == before.revlog and {c: after.cards[c] for c in before.cards} == before.cards


def test_moved_note_and_renamed_subdeck_warn_and_say_what_to_do(sample: Path, out_dir: Path, anki: Anki) -> None:
    before = imported_and_reviewed(sample, out_dir, anki)
    general = (sample / "general.md").read_text(encoding="utf-8")
    start, end = general.index("## Which languages"), len(general)
    (sample / "general.md").write_text(general[:start], encoding="utf-8")
    with (sample / "tips.md").open("a", encoding="utf-8") as fh:
        fh.write("\n" + general[start:end])
    edit(sample / "technical.md", "deck: Technical", "deck: Technical Questions")
    result = build_at(sample, out_dir, now=T0 + 1)
    assert _warnings(result) == ["technical.md:8:1 deck-moved", "tips.md:14:1 deck-moved"]
    moved = next(w for w in result.compiled.warnings if w.location.path.name == "tips.md")
    assert "'Sample Deck::General' to 'Sample Deck::Tips' ('gen-languages')" in moved.message
    assert '"deck:Sample Deck::General" ("Id:gen-languages")' in moved.hint
    renamed = next(w for w in result.compiled.warnings if w.location.path.name == "technical.md")
    assert "3 note(s) moved from 'Sample Deck::Technical' to 'Sample Deck::Technical Questions'" in renamed.message
    # what the warning says is true: Anki updates the notes but leaves their cards where they were
    log = anki.import_package(result.output)
    assert (log.new, log.updated, log.conflicting) == (0, 4, 0)
    after = state(anki)
    assert after.duplicates == set()
    assert (after.notes, after.revlog, after.cards) == (before.notes, before.revlog, before.cards)
    # and following the hint moves them with their schedule
    tips = anki.col.decks.id_for_name("Sample Deck::Tips")
    found = anki.col.find_cards('"deck:Sample Deck::General" ("Id:gen-languages")')
    anki.col.set_deck(found, tips)
    assert [c.did for c in anki.cards_of("gen-languages")] == [tips]
    assert anki.col.db.scalar("select count() from revlog") == before.revlog
    assert build_at(sample, out_dir, now=T0 + 2).compiled.warnings == ()  # recorded: said once


def test_removed_cards_warn_and_name_empty_cards(sample: Path, out_dir: Path, anki: Anki) -> None:
    before = imported_and_reviewed(sample, out_dir, anki)
    edit(sample / "algorithms.md", "<!-- id: algo-epoch -->\n<!-- reverse -->\n", "<!-- id: algo-epoch -->\n")
    edit(sample / "algorithms.md", "with step size {{c2::$\\eta$}}", "with a step size")
    summary = CliRunner().invoke(main, ["diff", str(sample)]).output
    assert "! algo-epoch  card(s) Reverse removed\n  ! algo-gd-cloze  card(s) c2 removed" in summary
    result = build_at(sample, out_dir, now=T0 + 1)
    assert _warnings(result) == ["algorithms.md:15:1 cards-removed", "algorithms.md:21:1 cards-removed"]
    messages = sorted(w.message for w in result.compiled.warnings)
    assert "'algo-epoch' no longer has card(s) Reverse" in messages[0]
    assert "'algo-gd-cloze' no longer has card(s) c2" in messages[1]
    assert all("Empty Cards" in w.hint for w in result.compiled.warnings)
    log = anki.import_package(result.output)
    assert (log.new, log.updated, log.conflicting) == (0, 2, 0)
    after = state(anki)
    assert after.duplicates == set()
    assert (after.notes, after.revlog, after.cards) == (before.notes, before.revlog, before.cards)
    # the cards are still there; Anki's Empty Cards finds exactly them
    report = anki.col.get_empty_cards()
    empty = {(anki.col.get_note(n.note_id)["Id"], anki.col.get_card(c).ord) for n in report.notes for c in n.card_ids}
    assert empty == {("algo-epoch", 1), ("algo-gd-cloze", 1)}
