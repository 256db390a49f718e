"""Deck-scoped identity: the deck uuid, GUIDs the lock keeps through renames, retired ids, pinned guids."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from click.testing import CliRunner

from conftest import SAMPLE, T0, Anki, build_at, edit, imported_and_reviewed, refused, state
from deckgen.build.lock import LOCK_NAME, read_lock
from deckgen.cli import main
from deckgen.sources.config import load_config


def test_missing_uuid_is_an_error_whose_hint_prints_a_fresh_line(tmp_path: Path) -> None:
    src = tmp_path / "source"
    shutil.copytree(SAMPLE, src)
    toml = src / "deckgen.toml"
    toml.write_text('name = "Sample Deck"\n', encoding="utf-8")
    result = CliRunner().invoke(main, ["build", str(src), "-o", str(tmp_path / "out")])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"{toml.as_posix()}:1:1: error: deckgen.toml has no 'uuid'" in result.output
    assert "[uuid-missing]" in result.output
    (line,) = re.findall(r'uuid = "[0-9a-f-]{36}"', result.output)
    toml.write_text(f'name = "Sample Deck"\n{line}\n', encoding="utf-8")
    assert CliRunner().invoke(main, ["build", str(src), "-o", str(tmp_path / "out")]).exit_code == 0


def test_uuid_is_validated_and_normalised(tmp_path: Path) -> None:
    path = tmp_path / "deckgen.toml"
    config, problems = load_config('name = "D"\nuuid = "F28934B4A71F4547AC1C6C903FF36B61"\n', path)
    assert config is not None and config.uuid == "f28934b4-a71f-4547-ac1c-6c903ff36b61" and problems == []
    config, problems = load_config('name = "D"\n\nuuid = "not-a-uuid"\n', path)
    assert config is None and [(str(p.location), p.rule) for p in problems] == [
        (f"{path.as_posix()}:3:1", "config-invalid")
    ]
    assert 'uuid = "' in problems[0].hint


# --- scenarios in real Anki: build, import, review every card, edit, rebuild, re-import ---------------------


def test_two_decks_using_the_same_ids_keep_their_own_notes(tmp_path: Path, anki: Anki) -> None:
    """Problem 1: GUIDs came from the note id alone, so two decks sharing an id overwrote each other."""
    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(SAMPLE, a)
    shutil.copytree(SAMPLE, b)
    (b / "deckgen.toml").write_text('name = "Other Deck"\nuuid = "5d0c6a1e-93b2-4f7a-8c11-2e4b6d8f0a13"\n', "utf-8")
    edit(b / "general.md", "Connect a **concrete** experience to the role.", "The other deck's answer.")
    before = imported_and_reviewed(a, tmp_path / "out-a", anki)
    log = anki.import_package(build_at(b, tmp_path / "out-b", now=T0 + 5).output)
    assert (log.new, log.updated, log.duplicate, log.conflicting) == (10, 0, 0, 0)
    after = state(anki)
    assert after.ids == tuple(sorted(before.ids * 2))  # each id once per deck
    assert after.notes == 20 and after.revlog == before.revlog
    assert {cid: after.cards[cid] for cid in before.cards} == before.cards
    texts = {anki.col.get_note(nid)["Answer"] for nid in anki.col.find_notes('"Id:gen-why-ml"')}
    assert texts == {
        "<p>Connect a <strong>concrete</strong> experience to the role.</p>",
        "<p>The other deck's answer.</p>",
    }
    names = {d.name for d in anki.col.decks.all_names_and_ids()}
    assert {n for n in names if n.startswith("Other Deck")} == {
        n.replace("Sample", "Other") for n in names if "Sample" in n
    }


def test_rename_chain_keeps_the_guid_in_any_alias_order(sample: Path, out_dir: Path, anki: Anki) -> None:
    """Problem 2: t-a → t-b; was: t-a → t-c; was: t-b forked the note at the second step."""
    before = imported_and_reviewed(sample, out_dir, anki)
    steps = [
        ("<!-- id: gen-why-ml -->", "<!-- id: gen-b; was: gen-why-ml -->", "gen-why-ml"),
        ("<!-- id: gen-b; was: gen-why-ml -->", "<!-- id: gen-c; was: gen-b -->", "gen-b"),
        ("<!-- id: gen-c; was: gen-b -->", "<!-- id: gen-d; was: gen-c, gen-why-ml -->", "gen-c"),
        ("<!-- id: gen-d; was: gen-c, gen-why-ml -->", "<!-- id: gen-e; was: gen-why-ml, gen-d -->", "gen-d"),
    ]
    for i, (old, new, old_id) in enumerate(steps, start=1):
        edit(sample / "general.md", old, new)
        result = build_at(sample, out_dir, now=T0 + i)
        diff = result.compiled.diff
        assert [(c.id, c.old_id) for c in diff.renamed] == [(new.split()[2].rstrip(";"), old_id)]
        assert diff.added == diff.removed == diff.orphans == ()
        log = anki.import_package(result.output)
        assert (log.new, log.updated, log.conflicting) == (0, 1, 0), new
    after = state(anki)
    assert after.duplicates == set()
    assert (after.notes, after.revlog, after.cards) == (before.notes, before.revlog, before.cards)
    assert "gen-e" in after.ids and "gen-why-ml" not in after.ids
    assert read_lock(sample / LOCK_NAME).notes["gen-e"].was == ("gen-b", "gen-c", "gen-d", "gen-why-ml")


def test_rename_onto_another_recorded_note_is_refused(sample: Path, out_dir: Path) -> None:
    """A rename that would change a recorded GUID (merge two notes' histories) names the fix."""
    build_at(sample, out_dir, now=T0)
    text = (sample / "general.md").read_text(encoding="utf-8")
    languages = text.index("## Which languages")
    (sample / "general.md").write_text(
        text[:languages].replace("<!-- id: gen-why-ml -->", "<!-- id: gen-why-ml; was: gen-languages -->"), "utf-8"
    )
    assert refused(sample, out_dir, T0 + 1) == ("general.md:10:1 id-rename-conflict",)


def test_removed_id_is_retired_for_new_notes_and_for_deckgen_new(sample: Path, out_dir: Path, anki: Anki) -> None:
    """Problem 3: a new note reusing a removed note's id took over its schedule."""
    before = imported_and_reviewed(sample, out_dir, anki)
    general = sample / "general.md"
    original = general.read_text(encoding="utf-8")
    general.write_text(original[: original.index("## Which languages")], encoding="utf-8")
    assert build_at(sample, out_dir, now=T0 + 1).compiled.diff.orphans == ("gen-languages",)
    with general.open("a", encoding="utf-8") as fh:
        fh.write("## Which language would you never use?\n<!-- id: gen-languages -->\n\nCOBOL.\n")
    assert refused(sample, out_dir, T0 + 2) == ("general.md:15:1 id-retired",)

    general.write_text(original[: original.index("## Which languages")], encoding="utf-8")
    # ids come from the prompt alone: this prompt's id is the retired one, so it gets a suffix
    made = CliRunner().invoke(main, ["new", "Gen languages?", str(sample), "--deck", "General"])
    assert made.exit_code == 0 and "added 'gen-languages-2'" in made.output, made.output

    general.write_text(original.replace("<!-- id: gen-languages -->", "<!-- id: gen-languages; restore -->"), "utf-8")
    restored = build_at(sample, out_dir, now=T0 + 3)
    assert [(c.id, c.fields) for c in restored.compiled.diff.changed] == [("gen-languages", ("restored",))]
    log = anki.import_package(restored.output)
    assert (log.new, log.updated, log.conflicting) == (0, 1, 0)
    after = state(anki)
    assert after.duplicates == set()
    assert (after.notes, after.revlog, after.cards) == (before.notes, before.revlog, before.cards)


def test_pinned_guid_is_used_and_then_kept_by_the_lock(sample: Path, out_dir: Path, anki: Anki) -> None:
    """<!-- guid: --> keeps an existing Anki note's GUID (deckgen import); once recorded it cannot change."""
    edit(
        sample / "tips.md", "<!-- id: tip-think-aloud -->\n", "<!-- id: tip-think-aloud -->\n<!-- guid: Ab1$x{y}~ -->\n"
    )
    before = imported_and_reviewed(sample, out_dir, anki)
    assert anki.note_by_id_field("tip-think-aloud").guid == "Ab1$x{y}~"
    assert read_lock(sample / LOCK_NAME).notes["tip-think-aloud"].guid == "Ab1$x{y}~"
    edit(sample / "tips.md", "<!-- guid: Ab1$x{y}~ -->", "<!-- guid: Zz9 -->")
    assert refused(sample, out_dir, T0 + 1) == ("tips.md:9:1 guid-changed",)
    # without the option the lock still knows the GUID: a rename keeps it too
    edit(
        sample / "tips.md",
        "<!-- id: tip-think-aloud -->\n<!-- guid: Zz9 -->\n",
        "<!-- id: tip-aloud; was: tip-think-aloud -->\n",
    )
    log = anki.import_package(build_at(sample, out_dir, now=T0 + 2).output)
    assert (log.new, log.updated, log.conflicting) == (0, 1, 0)
    after = state(anki)
    assert after.duplicates == set()
    assert (after.notes, after.revlog, after.cards) == (before.notes, before.revlog, before.cards)


def test_a_copied_folder_with_the_other_decks_lock_is_refused(sample: Path, tmp_path: Path, anki: Anki) -> None:
    """A copy given a new uuid but still holding the original's lock would reuse the original's GUIDs."""
    build_at(sample, tmp_path / "out-a", now=T0)
    copy = tmp_path / "copy"
    shutil.copytree(sample, copy)
    (copy / "deckgen.toml").write_text('name = "Copy"\nuuid = "9a1b2c3d-4e5f-4a6b-8c7d-0e1f2a3b4c5d"\n', "utf-8")
    assert refused(copy, tmp_path / "out-b", T0 + 1) == ("deckgen.lock:3:1 lock-foreign",)
    (copy / LOCK_NAME).unlink()
    anki.import_package(next((tmp_path / "out-a").glob("*.apkg")))
    log = anki.import_package(build_at(copy, tmp_path / "out-b", now=T0 + 1).output)
    assert (log.new, log.updated) == (10, 0) and anki.col.note_count() == 20
