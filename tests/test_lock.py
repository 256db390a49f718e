"""The lock: content hashes and mod times, renames that keep history, orphans, --locked."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import T0, Anki, build_at
from deckgen.build.lock import LOCK_NAME, Lock, _checked_entry, dumps, loads, read_lock
from deckgen.errors import LockError, SourceError


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


def test_changed_note_gets_a_strictly_newer_mod_even_in_the_same_second(sample: Path, out_dir: Path) -> None:
    build_at(sample, out_dir, now=T0)
    first = read_lock(sample / LOCK_NAME)
    _edit(sample / "general.md", "Python for modelling", "Python for models")
    build_at(sample, out_dir, now=T0)
    second = read_lock(sample / LOCK_NAME)
    assert second.notes["gen-languages"].mod == first.notes["gen-languages"].mod + 1
    untouched = {k: v for k, v in second.notes.items() if k != "gen-languages"}
    assert untouched == {k: v for k, v in first.notes.items() if k != "gen-languages"}


def test_later_change_takes_the_build_time(sample: Path, out_dir: Path) -> None:
    build_at(sample, out_dir, now=T0)
    _edit(sample / "tips.md", "before you code", "before you write code")
    result = build_at(sample, out_dir, now=T0 + 500)
    assert read_lock(sample / LOCK_NAME).notes["tip-think-aloud"].mod == T0 + 500
    assert [c.fields for c in result.compiled.diff.changed] == [("Answer",)]


def test_lock_text_round_trips_and_lists_one_note_per_line(sample: Path, out_dir: Path) -> None:
    build_at(sample, out_dir, now=T0)
    text = (sample / LOCK_NAME).read_text(encoding="utf-8")
    lock = loads(text, sample / LOCK_NAME)
    assert dumps(lock) == text
    assert sum('"guid"' in line for line in text.splitlines()) == len(lock.notes) == 10


MOD = f'"mod": {T0}, "parts"'


# (damage to the lock's text, where it is reported, what the message says); line 9 is the first note
DAMAGES = [
    (lambda t: "{not json", "1:2", "damaged: Expecting property name"),
    (lambda t: "\n\n  \udcff".encode("utf-8", "surrogateescape") + t.encode(), "3:3", "not UTF-8 (byte 0xff)"),
    (lambda t: t.replace(MOD, '"mod": Infinity, "parts"', 1), "9:76", "Infinity is not a number deckgen writes"),
    (lambda t: t.replace(MOD, '"mod": 1e30, "parts"', 1), "9:1", "mod must be an integer"),
    (lambda t: t.replace(MOD, '"mod": -5, "parts"', 1), "9:1", "mod must be an integer from 0"),
    (lambda t: t.replace(MOD, '"mod": true, "parts"', 1), "9:1", "not True"),
    (lambda t: t.replace(MOD, '"mod": 32503680000, "parts"', 1), "9:1", "not 32503680000"),  # the year 3000
    (lambda t: t.replace('"guid"', '"removed": "false", "guid"', 1), "9:1", "removed must be true or false"),
    (lambda t: t.replace('"cards": [0]', '"cards": ' + "[" * 100_000 + "]" * 100_000, 1), "1:1", "nested too"),
    (lambda t: t.replace('"version": 2', '"version": 1'), "2:1", "unsupported lock version 1"),
    (lambda t: t.replace('"notes": {', '"notes": [', 1), "9:17", "damaged: Expecting ',' delimiter"),
    (lambda t: t.replace('"notes": {', '"notes": [], "x": {', 1), "1:1", "notes must be an object"),
]


@pytest.mark.parametrize(("damage", "where", "message"), DAMAGES)
def test_damaged_lock_is_a_located_error_and_changes_nothing(
    sample: Path, out_dir: Path, damage: Any, where: str, message: str
) -> None:
    from click.testing import CliRunner

    from deckgen.cli import main

    build_at(sample, out_dir, now=T0)
    lock_path = sample / LOCK_NAME
    damaged = damage(lock_path.read_text(encoding="utf-8"))
    lock_path.write_bytes(damaged if isinstance(damaged, bytes) else damaged.encode("utf-8"))
    before = {p: p.read_bytes() for p in (lock_path, *out_dir.glob("*.apkg"))}
    for command in (["build", str(sample), "-o", str(out_dir)], ["check", str(sample)]):
        result = CliRunner().invoke(main, command)
        assert result.exit_code == 1 and (result.exception is None or isinstance(result.exception, SystemExit))
        assert "Traceback" not in result.output
        assert f"{lock_path.as_posix()}:{where}: error: " in result.output and "[lock-invalid]" in result.output
        assert message in result.output and "git checkout" in result.output
    assert {p: p.read_bytes() for p in before} == before


def test_a_lock_that_is_a_folder_is_a_located_error(sample: Path, out_dir: Path) -> None:
    (sample / LOCK_NAME).mkdir()
    with pytest.raises(SourceError, match=r"deckgen\.lock:1:1: error: cannot read the lock file: .*\[lock-invalid\]"):
        build_at(sample, out_dir, now=T0)


def test_locked_build_fails_instead_of_changing_the_lock(sample: Path, out_dir: Path) -> None:
    build_at(sample, out_dir, now=T0)
    lock_before = (sample / LOCK_NAME).read_bytes()
    package_before = (out_dir / "sample-deck.apkg").read_bytes()
    assert build_at(sample, out_dir, now=T0 + 9, locked=True).written  # up to date: fine
    _edit(sample / "faq.md", "A résumé", "A printed résumé")
    with pytest.raises(LockError, match=r"out of date .*1 changed"):
        build_at(sample, out_dir, now=T0 + 10, locked=True)
    assert (sample / LOCK_NAME).read_bytes() == lock_before
    assert (out_dir / "sample-deck.apkg").read_bytes() == package_before


def test_removed_note_becomes_an_orphan_and_restoring_it_bumps_its_mod(sample: Path, out_dir: Path) -> None:
    build_at(sample, out_dir, now=T0)
    faq = (sample / "faq.md").read_text(encoding="utf-8")
    (sample / "faq.md").write_text(faq.split("## What should I bring?")[0], encoding="utf-8")
    removed = build_at(sample, out_dir, now=T0 + 1)
    assert removed.compiled.diff.removed == ("faq-bring",)
    assert removed.compiled.diff.orphans == ("faq-bring",)
    assert read_lock(sample / LOCK_NAME).notes["faq-bring"].removed
    later = build_at(sample, out_dir, now=T0 + 2)
    assert later.compiled.diff.removed == () and later.compiled.diff.orphans == ("faq-bring",)
    (sample / "faq.md").write_text(faq, encoding="utf-8")
    with pytest.raises(SourceError, match=r"faq\.md:\d+:1: error: id 'faq-bring' belongs to the removed note"):
        build_at(sample, out_dir, now=T0 + 2)  # a retired id: only the same note, said so, may come back
    _edit(sample / "faq.md", "<!-- id: faq-bring -->", "<!-- id: faq-bring; restore -->")
    restored = build_at(sample, out_dir, now=T0 + 2)
    assert [(c.id, c.fields) for c in restored.compiled.diff.changed] == [("faq-bring", ("restored",))]
    assert read_lock(sample / LOCK_NAME).notes["faq-bring"].mod == T0 + 2  # > its last mod (T0)
    assert not read_lock(sample / LOCK_NAME).notes["faq-bring"].removed


def test_renamed_note_updates_in_place_and_keeps_its_reviews(sample: Path, out_dir: Path, anki: Anki) -> None:
    first = build_at(sample, out_dir, now=T0)
    anki.import_package(first.output)
    anki.review_all("Sample Deck")
    old_note = anki.note_by_id_field("gen-why-ml")
    old_cards = {c.id: (c.ivl, c.due) for c in anki.cards_of("gen-why-ml")}
    revlog = anki.col.db.scalar("select count() from revlog")

    _edit(sample / "general.md", "<!-- id: gen-why-ml -->", "<!-- id: gen-motivation; was: gen-why-ml -->")
    second = build_at(sample, out_dir, now=T0)
    diff = second.compiled.diff
    assert [(c.id, c.old_id) for c in diff.renamed] == [("gen-motivation", "gen-why-ml")]
    assert diff.added == () and diff.removed == () and diff.orphans == ()
    assert "gen-why-ml" not in read_lock(sample / LOCK_NAME).notes

    log = anki.import_package(second.output)
    assert (log.new, log.updated, log.conflicting) == (0, 1, 0)
    renamed = anki.note_by_id_field("gen-motivation")
    assert renamed.id == old_note.id and renamed.guid == old_note.guid
    assert {c.id: (c.ivl, c.due) for c in anki.cards_of("gen-motivation")} == old_cards
    assert anki.col.db.scalar("select count() from revlog") == revlog
    assert anki.col.note_count() == 10


def test_rename_alias_cannot_collide_with_another_id(sample: Path, out_dir: Path) -> None:
    _edit(sample / "general.md", "<!-- id: gen-why-ml -->", "<!-- id: gen-motivation; was: gen-languages -->")
    with pytest.raises(SourceError, match=r"duplicate id 'gen-languages'.*\[id-duplicate\]"):
        build_at(sample, out_dir, now=T0)


_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12)
_ENTRY_VALUES = st.fixed_dictionaries(
    {
        "guid": _TEXT,
        "mod": st.integers(0, 4_102_444_799),
        "parts": st.dictionaries(_TEXT, _TEXT, max_size=4),
        "cards": st.lists(st.integers(0, 65535), max_size=3),
    },
    optional={"was": st.lists(_TEXT, max_size=2), "removed": st.booleans()},
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_TEXT, _ENTRY_VALUES, min_size=1, max_size=4))
def test_each_note_line_is_exactly_what_json_writes_and_reads_back(entries: dict[str, dict[str, Any]]) -> None:
    """The hand-spelt line per note equals json.dumps(sort_keys=True, ensure_ascii=False) of the entry,
    and the fast validation of a well-formed entry gives what the full one gives."""
    text = '{\n  "version": 2,\n  "notetypes": {},\n  "notes": {\n'
    text += ",\n".join(
        f"    {json.dumps(k, ensure_ascii=False)}: {json.dumps(v, ensure_ascii=False)}" for k, v in entries.items()
    )
    text += "\n  }\n}\n"
    lock = loads(text, Path("deckgen.lock"))
    for key, value in entries.items():
        assert lock.notes[key] == _checked_entry(key, value)
        value = {**value, "parts": dict(sorted(value["parts"].items()))}
        value = {k: v for k, v in value.items() if k not in ("was", "removed") or v}  # written only when set
        line = f"    {json.dumps(key, ensure_ascii=False)}: {json.dumps(value, sort_keys=True, ensure_ascii=False)}"
        assert {line, line + ","} & set(dumps(replace(lock, texts={})).split("\n"))  # (not as read: below)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(_TEXT, _ENTRY_VALUES, min_size=1, max_size=4), st.data())
def test_entries_given_back_unchanged_are_written_as_they_were_read(
    entries: dict[str, dict[str, Any]], data: st.DataObject
) -> None:
    """An entry the build keeps (the same object) is written with the text it was read from, even when
    that text is not how ``dumps`` spells it (keys unsorted here); a changed one is written afresh."""
    text = '{\n  "version": 2,\n  "notetypes": {},\n  "notes": {\n'
    text += ",\n".join(f"    {json.dumps(k, ensure_ascii=False)}: {json.dumps(v)}" for k, v in entries.items())
    text += "\n  }\n}\n"
    lock = loads(text, Path("deckgen.lock"))

    def note_lines(lock_text: str) -> list[str]:
        return [line for line in lock_text.split("\n") if line.startswith("    ")]

    assert note_lines(dumps(lock)) == note_lines(text)
    changed = data.draw(st.sampled_from(sorted(entries)))
    notes = {**lock.notes, changed: lock.notes[changed]._replace(mod=lock.notes[changed].mod // 2 + 1)}
    again = replace(lock, notes=notes)
    written = dumps(again).split("\n")
    assert loads(dumps(again), Path("deckgen.lock")).notes == notes
    for key, entry in notes.items():
        prefix = f"    {json.dumps(key, ensure_ascii=False)}: "
        expected = dumps(Lock({key: entry})) if key == changed else text
        want = next(line for line in expected.split("\n") if line.startswith(prefix)).removesuffix(",")
        assert want in {line.removesuffix(",") for line in written}


# A lock whose lines are not one entry each (formatted by hand or by another tool), or whose lines do not
# read back as their entries, is written afresh: texts are reused only where they are exactly the entry.
ODD_LAYOUTS = [
    lambda t: json.dumps(json.loads(t), indent=2) + "\n",  # an entry over several lines
    lambda t: t.replace('"parts": {', '"parts": {\n    "n01": "x", ', 1),  # a line that starts like the next entry
    lambda t: t[: t.index('"notes"')] + t[t.index('"notes"') :].replace("},\n    ", "}, ", 1),  # two on a line
]


@pytest.mark.parametrize("layout", ODD_LAYOUTS)
def test_a_lock_laid_out_otherwise_is_written_the_usual_way(sample: Path, out_dir: Path, layout: Any) -> None:
    build_at(sample, out_dir, now=T0)
    text = (sample / LOCK_NAME).read_text(encoding="utf-8")
    odd = layout(text)
    assert odd != text
    lock = loads(odd, sample / LOCK_NAME)
    assert not lock.texts
    assert dumps(lock) == dumps(replace(lock, texts={}))


def test_lines_that_start_like_entries_but_do_not_hold_them_are_not_reused() -> None:
    """Three lines, each starting with its entry's key, yet the first entry runs into the second line."""
    text = (
        '{\n  "version": 2,\n  "notetypes": {},\n  "notes": {\n'
        '    "a": {"cards": [], "guid": "g1", "mod": 1, "parts": {\n'
        '    "b": "h"}}, "b": {"cards": [], "guid": "g2", "mod": 1, "parts": {}},\n'
        '    "c": {"cards": [], "guid": "g3", "mod": 1, "parts": {}}\n  }\n}\n'
    )
    lock = loads(text, Path("deckgen.lock"))
    assert lock.notes["a"].parts == {"b": "h"} and list(lock.notes) == ["a", "b", "c"]
    assert not lock.texts
    assert loads(dumps(lock), Path("deckgen.lock")).notes == lock.notes


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(st.characters(blacklist_categories=("Cs",))), max_size=5))
def test_field_hashes_are_the_hashes_every_lock_has_recorded(fields: list[str]) -> None:
    """Workers send the field hashes as bytes; their hex must stay sha256(field)[:16], or every note of
    every deck would look changed after an upgrade."""
    import hashlib

    from deckgen.build.lock import field_hashes

    packed = field_hashes(fields)
    assert len(packed) == 8 * len(fields)
    assert [packed[8 * i : 8 * i + 8].hex() for i, f in enumerate(fields) if f] == [
        hashlib.sha256(f.encode("utf-8")).hexdigest()[:16] for f in fields if f
    ]
