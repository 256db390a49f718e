"""The build cache and parallel rendering never change a package: cold, warm, parallel and serial builds
are byte-identical; a stale, corrupt, unwritable or concurrently written cache is a miss, never an error."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import pytest

from conftest import T0, build_at
from deckgen.anki.notetypes import all_notetypes
from deckgen.build import incremental, parsememo, pipeline, plain, prefetch
from deckgen.build.cache import CACHE_DIR, CACHE_FILE, open_cache
from deckgen.build.lock import update_lock
from deckgen.build.parallel import WorkPool
from deckgen.build.pipeline import build, check_sources, compile_deck
from deckgen.errors import SourceError
from deckgen.render import markdown as render
from deckgen.sources.model import Body, Faq, Note, Question, SourceLocation, Tip
from deckgen.sources.parse import parse_category

BAD = Path(__file__).parent / "data" / "bad"


@pytest.fixture
def conversions(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every Markdown text this process renders (small decks never start worker processes)."""
    seen: list[str] = []
    real = render.Renderer.convert

    def counting(self: render.Renderer, text: str, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        seen.append(text)
        return real(self, text, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(render.Renderer, "convert", counting)
    return seen


def _package(path: Path) -> bytes:
    (apkg,) = path.glob("*.apkg")
    return apkg.read_bytes()


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_warm_build_renders_nothing_and_writes_the_same_bytes(
    sample: Path, tmp_path: Path, conversions: list[str]
) -> None:
    out = tmp_path / "out"
    cold = build_at(sample, out).output.read_bytes()
    assert conversions and (out / CACHE_DIR).is_dir()
    conversions.clear()
    warm = build_at(sample, out, now=T0 + 60).output.read_bytes()
    assert conversions == []
    assert warm == cold == build_at(sample, tmp_path / "no-cache", cache=False).output.read_bytes()


def test_edited_note_alone_is_rendered_again_and_matches_a_cold_build(
    sample: Path, tmp_path: Path, conversions: list[str]
) -> None:
    build_at(sample, tmp_path / "out")
    _edit(sample / "general.md", "Python for modelling, SQL for data.", "Python and SQL, daily.")
    twin = tmp_path / "twin"
    shutil.copytree(sample, twin)  # same sources and same lock
    conversions.clear()
    warm = build_at(sample, tmp_path / "out", now=T0 + 60)
    note = sample / "general.md"
    assert any("Python and SQL, daily." in c for c in conversions)  # that note, and nothing else
    assert all(c in note.read_text(encoding="utf-8") for c in conversions) and len(conversions) <= 3
    cold = build_at(twin, tmp_path / "cold", now=T0 + 60, cache=False)
    assert warm.output.read_bytes() == cold.output.read_bytes()
    assert (sample / "deckgen.lock").read_bytes() == (twin / "deckgen.lock").read_bytes()
    assert warm.compiled.diff == cold.compiled.diff


def test_cached_warnings_follow_their_note_when_lines_above_it_change(
    sample: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    items = "".join(f"- item {i}\n" for i in range(7))
    with (sample / "general.md").open("a", encoding="utf-8") as fh:
        fh.write(f"\n## Which tools are worth listing?\n<!-- id: gen-tools -->\n\n{items}")
    cache = tmp_path / "out" / CACHE_DIR
    first = compile_deck(sample, T0, cache_dir=cache)
    assert [d.rule for d in first.warnings] == ["list-too-long"]
    linted: list[str] = []
    real = incremental.note_findings
    monkeypatch.setattr(incremental, "note_findings", lambda note, config: linted.append(note.id) or real(note, config))
    # Blank lines above the note: every note of the file is as it was, so its findings come from the cache.
    _edit(sample / "general.md", "## Which tools are worth listing?", "\n\n\n## Which tools are worth listing?")
    moved = compile_deck(sample, T0, cache_dir=cache)
    assert linted == []
    assert moved.diagnostics == compile_deck(sample, T0).diagnostics
    assert moved.warnings[0].location.line == first.warnings[0].location.line + 3
    # A new note: findings are kept per file, so that file's notes are linted again, and no other file's.
    new_note = "## Is this new?\n<!-- id: gen-new -->\n\nYes.\n\n"
    _edit(sample / "general.md", "## Which tools are worth listing?", new_note + "## Which tools are worth listing?")
    linted.clear()
    warm = compile_deck(sample, T0, cache_dir=cache)
    in_file = [n.id for c in warm.deck.categories if c.location.path.name == "general.md" for n in c.notes]
    assert "gen-new" in linted and sorted(linted) == sorted(in_file) and len(in_file) < len(warm.notes)
    assert warm.diagnostics == compile_deck(sample, T0).diagnostics
    assert warm.warnings[0].location.line == first.warnings[0].location.line + 8


@pytest.mark.parametrize("change", ["RENDER_FORMAT", "extension setting"])
def test_a_new_renderer_version_or_extension_setting_invalidates_the_cache(
    change: str, sample: Path, tmp_path: Path, conversions: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    before = build_at(sample, out).output.read_bytes()
    conversions.clear()
    if change == "RENDER_FORMAT":
        monkeypatch.setattr(render, "RENDER_FORMAT", render.RENDER_FORMAT + 1)
    else:
        highlight = dict(render.EXTENSION_CONFIGS["pymdownx.highlight"], css_class="dg-code")
        monkeypatch.setitem(render.EXTENSION_CONFIGS, "pymdownx.highlight", highlight)
    after = build_at(sample, out, now=T0 + 60)
    assert len(conversions) >= len(after.compiled.notes)  # everything rendered again
    html = "".join(f for rn in after.compiled.notes for f in rn.fields)
    if change == "extension setting":
        assert 'class="dg-code"' in html and after.output.read_bytes() != before
    else:
        assert after.output.read_bytes() == before


@pytest.mark.parametrize("damage", ["flipped bytes", "truncated", "foreign file", "cache is a folder", "empty"])
def test_a_damaged_cache_is_a_miss_never_an_error(damage: str, sample: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    good = build_at(sample, out).output.read_bytes()
    db = out / CACHE_DIR / CACHE_FILE
    data = bytearray(db.read_bytes())
    assert data
    for extra in db.parent.glob(CACHE_FILE + "-*"):  # the write-ahead log of a finished build
        extra.unlink()
    if damage == "flipped bytes":
        for i in range(len(data) // 2, len(data), 7):
            data[i] ^= 0x5A
    elif damage == "truncated":
        del data[len(data) * 2 // 3 :]
    elif damage == "empty":
        data = bytearray()
    elif damage == "foreign file":
        data = bytearray(os.urandom(len(data)))
    db.write_bytes(bytes(data))
    if damage == "cache is a folder":
        db.unlink()
        db.mkdir()
    again = build_at(sample, out, now=T0 + 60)
    assert again.output.read_bytes() == good


def test_an_unwritable_cache_is_a_warning_not_a_failure(sample: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / CACHE_DIR).mkdir(parents=True)
    (out / CACHE_DIR / CACHE_FILE).mkdir()  # sqlite cannot open a folder
    result = build_at(sample, out)
    assert result.compiled.notices and "build cache" in result.compiled.notices[0]
    assert result.output.read_bytes() == build_at(sample, tmp_path / "plain", cache=False).output.read_bytes()


def test_a_changed_or_deleted_image_is_never_hidden_by_the_cache(sample: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = build_at(sample, out)
    image = next((sample / "images").iterdir())
    image.write_bytes(image.read_bytes() + b"\x00changed")
    warm = build_at(sample, out, now=T0 + 60)
    cold = build_at(sample, tmp_path / "cold", now=T0 + 60, cache=False)
    assert sorted(warm.compiled.media) != sorted(first.compiled.media)
    assert warm.output.read_bytes() == cold.output.read_bytes()
    image.unlink()
    with pytest.raises(SourceError) as raised:
        build_at(sample, out, now=T0 + 120)
    assert [d.rule for d in raised.value.diagnostics] == ["image-missing"]


def test_parallel_rendering_gives_the_same_result_as_serial(sample: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    submitted = 0
    real = WorkPool.submit

    def counting(self: WorkPool, *args: object):  # type: ignore[no-untyped-def]
        nonlocal submitted
        submitted += 1
        return real(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(WorkPool, "submit", counting)
    monkeypatch.setattr(incremental, "POOL_MIN_SECONDS", 0.0)
    parallel = compile_deck(sample, T0, jobs=2)
    assert submitted > 0
    serial = compile_deck(sample, T0, jobs=1)
    assert parallel.notes == serial.notes and parallel.intros == serial.intros
    assert parallel.diagnostics == serial.diagnostics and parallel.new_lock == serial.new_lock


@pytest.mark.parametrize("worker_fails", [False, True])
def test_workers_started_early_parse_the_files_and_the_result_is_the_serial_one(
    worker_fails: bool, sample: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cold build of a big deck starts its workers first and has them parse the files; a worker that
    fails leaves its file to be parsed here. Either way: the serial build's result, and a cache that
    then holds every file's parse."""
    parsed_by_workers: list[str] = []
    real = WorkPool.submit

    def noting(self: WorkPool, fn: Any, *args: Any):  # type: ignore[no-untyped-def]
        if fn is parsememo.parse_plain:
            parsed_by_workers.append(args[1].name)
        return real(self, fn, *args)

    def failing(data: bytes, path: Path) -> bytes:
        raise MemoryError("a worker that ran out of memory")

    parsed_here: list[str] = []  # (a worker's calls are noted in the worker's copy of the list)
    real_parse = parsememo.parse_category

    def noting_parse(data: bytes, path: Path) -> Any:
        parsed_here.append(path.name)
        return real_parse(data, path)

    monkeypatch.setattr(WorkPool, "submit", noting)
    monkeypatch.setattr(pipeline, "EAGER_POOL_BYTES", 0)
    monkeypatch.setattr(parsememo, "WORKER_PARSE_BYTES", 0)
    monkeypatch.setattr(parsememo, "parse_category", noting_parse)
    if worker_fails:
        monkeypatch.setattr(parsememo, "parse_plain", failing)  # (forked workers see it too)
    early = compile_deck(sample, T0, jobs=2, cache_dir=tmp_path / "cache")
    hashed_here = update_lock(early.lock, early.notes, all_notetypes(), T0, early.deck.config.uuid)[0]
    assert early.new_lock == hashed_here  # (the workers' field hashes)
    files = sorted(p.name for p in sample.rglob("*.md") if p.name != "_deck.md")
    assert sorted(parsed_by_workers) == files
    assert sorted(parsed_here) == (files if worker_fails else [])
    serial = compile_deck(sample, T0, jobs=1)
    assert early.notes == serial.notes and early.diagnostics == serial.diagnostics
    assert early.new_lock == serial.new_lock and early.deck == serial.deck

    def parsed_again(data: bytes, path: Path) -> Any:
        raise AssertionError(f"{path} was parsed again")

    monkeypatch.setattr(parsememo, "parse_category", parsed_again)
    assert compile_deck(sample, T0, jobs=1, cache_dir=tmp_path / "cache").notes == serial.notes


def test_a_few_uncached_files_are_parsed_here_even_with_the_workers_started(
    sample: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sending a file or two (an edit) to a worker costs more than parsing them here: below
    ``WORKER_PARSE_BYTES`` of uncached sources, the started workers parse nothing."""
    sent: list[str] = []
    real = WorkPool.submit

    def noting(self: WorkPool, fn: Any, *args: Any) -> Any:
        if fn is parsememo.parse_plain:
            sent.append(args[1].name)
        return real(self, fn, *args)

    monkeypatch.setattr(WorkPool, "submit", noting)
    monkeypatch.setattr(pipeline, "EAGER_POOL_BYTES", 0)  # (the pool starts before the parse)
    total = sum(p.stat().st_size for p in sample.rglob("*.md"))
    assert total < parsememo.WORKER_PARSE_BYTES
    early = compile_deck(sample, T0, jobs=2, cache_dir=tmp_path / "cache")
    assert sent == []
    assert early.notes == compile_deck(sample, T0, jobs=1).notes


def test_a_file_whose_findings_are_missing_is_linted_in_the_workers_and_its_renders_kept(
    sample: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, conversions: list[str]
) -> None:
    """A new note changes its file's lint entry: the file's other notes keep their cached renders and are
    linted again, in the workers when there are enough of them (here: always), with the serial result."""
    cache = tmp_path / "cache"
    compile_deck(sample, T0, jobs=1, cache_dir=cache)
    _edit(
        sample / "general.md",
        "## Which languages",
        "## Is this new?\n<!-- id: gen-new -->\n\nYes.\n\n## Which languages",
    )
    lint_only: list[list[bool]] = []
    real = WorkPool.submit

    def noting(self: WorkPool, fn: Any, *args: Any):  # type: ignore[no-untyped-def]
        if fn is incremental.process_batch:
            lint_only.append([not render for _, _, render in args[3]])
        return real(self, fn, *args)

    linted_here: list[str] = []  # (a worker's calls are noted in the worker's copy of the list)
    real_findings = incremental.note_findings
    monkeypatch.setattr(
        incremental, "note_findings", lambda note, config: linted_here.append(note.id) or real_findings(note, config)
    )
    monkeypatch.setattr(WorkPool, "submit", noting)
    for name in ("NET_POOL_MIN_SECONDS", "LINT_POOL_MIN_SECONDS", "LINT_HERE_SECONDS"):
        monkeypatch.setattr(incremental, name, 0.0)  # (none linted here while a worker is still at it)
    conversions.clear()
    warm = compile_deck(sample, T0, jobs=2, cache_dir=cache)
    in_file = [n.id for c in warm.deck.categories if c.location.path.name == "general.md" for n in c.notes]
    assert sum(len(batch) for batch in lint_only if all(batch)) == len(in_file) - 1  # all but the new note
    assert linted_here == [] and conversions == []  # nothing linted or rendered in this process
    serial = compile_deck(sample, T0, jobs=1)
    assert warm.notes == serial.notes and warm.diagnostics == serial.diagnostics and warm.new_lock == serial.new_lock
    monkeypatch.setattr(incremental, "note_findings", lambda note, config: pytest.fail(f"{note.id} linted again"))
    assert compile_deck(sample, T0, jobs=1, cache_dir=cache).diagnostics == serial.diagnostics


def test_concurrent_builds_into_one_folder_share_the_cache_safely(sample: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    env = dict(os.environ, SOURCE_DATE_EPOCH=str(T0))
    command = [sys.executable, "-m", "deckgen", "build", str(sample), "-o", str(out), "-q"]
    builds = [subprocess.Popen(command, env=env, stderr=subprocess.PIPE) for _ in range(3)]
    for proc in builds:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    reference = build_at(sample, tmp_path / "reference", cache=False).output.read_bytes()
    assert _package(out) == reference
    with open_cache(out / CACHE_DIR, writable=False) as cache:  # whole and readable
        assert cache.warning == "" and cache._db is not None
        assert cache._db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_unused_entries_are_pruned(tmp_path: Path) -> None:
    with open_cache(tmp_path) as cache:
        keys = [cache.key("test", str(i)) for i in range(3000)]
        for key in keys:
            cache.put(key, [1, 2])
        cache.save()
    with open_cache(tmp_path) as cache:  # a build that uses 20 entries
        assert all(v == [1, 2] for v in cache.get_many(keys[:20]).values())
        cache.save()
    with open_cache(tmp_path) as cache:
        assert len(cache.get_many(keys[:20])) == 20 and cache.get_many(keys[20:]) == {}


def test_dry_run_reads_the_cache_but_writes_nothing(sample: Path, tmp_path: Path) -> None:
    build_at(sample, tmp_path / "dry", dry_run=True)
    assert not (tmp_path / "dry").exists()


@pytest.mark.parametrize("case", sorted(p.stem for p in BAD.glob("*.md")))
def test_check_reports_exactly_what_a_full_compile_reports(case: str, tmp_path: Path) -> None:
    """``deckgen check`` renders only notes with ``![`` in them; the diagnostics must not differ."""
    src = tmp_path / "src"
    shutil.copytree(BAD / "_base", src)
    (tmp_path / "outside.png").write_bytes((src / "images" / "ok.png").read_bytes())
    (src / "images" / "link.png").symlink_to(tmp_path / "outside.png")
    shutil.copyfile(BAD / f"{case}.md", src / "case.md")
    try:
        full = compile_deck(src, T0).diagnostics
    except SourceError as exc:
        full = exc.diagnostics
    try:
        fast = check_sources(src)
    except SourceError as exc:
        fast = exc.diagnostics
    assert fast == full


def test_quiet_build_prints_nothing_and_no_cache_leaves_no_cache(sample: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from deckgen.cli import main

    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["build", str(sample), "-o", str(out), "-q", "--no-cache"])
    assert result.exit_code == 0 and result.output == ""
    assert sorted(p.name for p in out.iterdir()) == ["sample-deck.apkg"]
    checked = CliRunner().invoke(main, ["check", str(sample), "-o", str(out)])
    assert checked.exit_code == 0 and "0 error(s)" in checked.output


_VARIANTS: dict[str, object] = {  # a field's annotation → a different value of that kind
    "str": "changed",
    "bool": True,
    "tuple[str, ...]": ("changed",),
    "Body": Body("changed", 3),
    "Body | None": Body("changed", 3),
    "SourceLocation": SourceLocation(Path("other.md"), 1),
    "SourceLocation | None": SourceLocation(Path("other.md"), 2),
    "frozenset[str]": frozenset({"changed"}),
}


@pytest.mark.parametrize("cls", [Question, Tip, Faq])
def test_cache_key_covers_every_note_field(cls: type[Note]) -> None:
    """The render/lint cache key (``_note_text``) changes with every field a note has, is the same for a
    note moved to other lines, and is the same in every process (no set order leaks into it)."""
    here = SourceLocation(Path("a.md"), 10)
    note = cls(
        id="n", prompt="P", answer=Body("A", 11), location=here, extra=Body("E", 14), ignore=frozenset({"b", "a"})
    )
    key = plain.note_text(note)
    for f in fields(cls):
        assert str(f.type) in _VARIANTS, f"field {f.name}: {f.type} is not a kind the cache key knows"
        changed = replace(note, **{f.name: _VARIANTS[str(f.type)]})
        assert plain.note_text(changed) != key, f.name

    def moved(where: SourceLocation | None) -> SourceLocation | None:
        return None if where is None else SourceLocation(where.path, where.line + 7, where.col)

    shifted = replace(
        note,
        location=moved(note.location),
        answer=Body(note.answer.text, note.answer.line + 7),
        extra=Body("E", 21),
    )
    assert plain.note_text(shifted) == key
    code = (
        "from pathlib import Path; from deckgen.build.plain import note_text as _note_text; "
        f"from deckgen.sources.model import Body, SourceLocation, {cls.__name__} as C; "
        "print(_note_text(C(id='n', prompt='P', answer=Body('A', 11), location=SourceLocation(Path('a.md'), 10), "
        "extra=Body('E', 14), ignore=frozenset({'b', 'a'}))))"
    )
    runs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2")
    }
    assert runs == {key + "\n"}


REPO = Path(__file__).parent.parent
_CORPORA = sorted(
    p
    for folder in (REPO / "tests" / "data", REPO / "source")
    for p in folder.rglob("*.md")
    if not p.name.startswith("_") and p.name != "README.md"
)


def test_a_remembered_parse_is_exactly_the_parse() -> None:
    """Every corpus file (good, bad, the shipped deck) read back from its cache entry equals its parse."""
    assert len(_CORPORA) > 60
    for path in _CORPORA:
        data = path.read_bytes()
        parsed = parse_category(data, path)
        value = json.loads(
            json.dumps(
                plain.category_plain(
                    *parsed, path, [plain.note_digest(n) for n in (parsed[0].notes if parsed[0] else ())]
                )
            )
        )  # as the cache stores it
        back = plain.category_from(value, path)
        assert back is not None and back[:2] == parsed, path
        assert back[2] == [plain.note_digest(n) for n in (parsed[0].notes if parsed[0] else ())]


@pytest.mark.parametrize(
    "damage",
    [
        lambda v: v[0][8][0].__setitem__(0, "Script"),  # no such note class
        lambda v: v[0][8][0].__setitem__(2, 3),  # a prompt that is not text
        lambda v: v[0][8][0].__setitem__(3, ["11", "answer"]),  # a body line that is not a number
        lambda v: v[0][8][0].append("one field too many"),
        lambda v: v[0][8][0].__setitem__(9, "true"),  # cloze: a string, not a boolean
        lambda v: v[0][8][0].__setitem__(4, [True, 1]),  # a heading line that is a boolean
        lambda v: v[0][8][0].__setitem__(5, ["answer", 3]),  # an extra body turned around
        lambda v: v[0][8][0].__setitem__(6, ["tag", 7]),  # a tag that is not text
        lambda v: v[0][8][0].__setitem__(12, "lint-rule"),  # ignored rules: a string, not a list
        lambda v: v[0][8][0].__setitem__(15, [3]),  # an id comment's place without a column
        lambda v: v[0][8].append(None),
        lambda v: v[0].__setitem__(1, "poem"),  # no such kind
        lambda v: v[1].append([None, "1", 1, "rule", "message", "", "error"]),
        lambda v: v[1].append([None, 1, 1, "rule", "message", "", "fatal"]),
        lambda v: v.append(0),
        lambda v: v[0][9].__setitem__(0, "00"),  # a note digest of the wrong length
    ],
)
def test_a_damaged_parse_entry_is_a_miss(damage: Callable[[Any], None]) -> None:
    path = REPO / "source" / "algorithms-and-models.md"
    value = json.loads(
        json.dumps(
            plain.category_plain(
                *(p := parse_category(path.read_bytes(), path)),
                path,
                [plain.note_digest(n) for n in p[0].notes] if p[0] else [],
            )
        )
    )
    value[1].append([None, 1, 1, "rule", "message", "", "warning"])  # so there is a finding to damage
    assert plain.category_from(value, path) is not None
    damage(value)
    assert plain.category_from(value, path) is None


def test_a_warm_build_parses_only_the_file_that_changed(
    sample: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build_at(sample, tmp_path / "out")
    parsed: list[str] = []
    real = parsememo.parse_category

    def counting(data: bytes, path: Path) -> Any:
        parsed.append(path.name)
        return real(data, path)

    monkeypatch.setattr(parsememo, "parse_category", counting)
    first = sorted(sample.glob("*.md"))[0]
    _edit(first, "## ", "## Edited: ")
    warm = build_at(sample, tmp_path / "out", now=T0 + 60)
    assert parsed == [first.name]
    cold = build_at(sample, tmp_path / "cold", cache=False, now=T0 + 60)
    assert warm.output.read_bytes() == cold.output.read_bytes()


def test_a_keyer_gives_the_same_keys_as_key(tmp_path: Path) -> None:
    with open_cache(tmp_path) as cache:
        keyer = cache.keyer("note", b"ctx")
        assert keyer("text") == cache.key("note", b"ctx", "text")
        assert keyer(b"text") == cache.key("note", b"ctx", "text")
        assert keyer("text") != cache.key("note", b"ctxtext") != keyer("other")


def test_a_cache_file_of_an_older_layout_is_started_afresh(sample: Path, tmp_path: Path) -> None:
    import sqlite3

    folder = tmp_path / "out" / CACHE_DIR
    folder.mkdir(parents=True)
    old = sqlite3.connect(folder / CACHE_FILE)
    old.execute("CREATE TABLE memo (key BLOB PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID")
    old.execute("INSERT INTO memo VALUES (x'00', '[1]')")
    old.commit()
    old.close()
    assert check_sources(sample, cache_dir=folder) == check_sources(sample)  # read-only: nothing usable, a miss
    result = build_at(sample, tmp_path / "out")
    assert result.output.read_bytes() == build_at(sample, tmp_path / "plain", cache=False).output.read_bytes()
    db = sqlite3.connect(folder / CACHE_FILE)
    assert db.execute("PRAGMA user_version").fetchone()[0] > 0
    assert db.execute("SELECT count(*) FROM memo WHERE key = x'00'").fetchone()[0] == 0
    db.close()


def test_values_are_written_in_batches_so_memory_stays_flat(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlite3

    from deckgen.build import cache as cache_module

    monkeypatch.setattr(cache_module, "_FLUSH_BYTES", 1000)
    with open_cache(tmp_path) as cache:
        for i in range(50):
            cache.put(cache.key("k", str(i)), "x" * 100)
        assert len(cache._pending) < 11  # the rest is on disk already
        on_disk = sqlite3.connect(tmp_path / CACHE_FILE).execute("SELECT count(*) FROM memo").fetchone()[0]
        assert on_disk >= 40
        cache.save()
        assert cache.get_many([cache.key("k", str(i)) for i in range(50)]) == {
            cache.key("k", str(i)): "x" * 100 for i in range(50)
        }


def test_a_forged_cached_render_with_unsafe_math_is_rendered_again_from_the_source(
    sample: Path, tmp_path: Path
) -> None:
    """nh3 cannot see TeX: a cached field naming \\href (even entity-encoded) is a miss, not a card."""
    import sqlite3

    out = tmp_path / "out"
    clean = build_at(sample, out).output.read_bytes()
    db = sqlite3.connect(out / CACHE_DIR / CACHE_FILE)
    forged = 0
    for key, value in db.execute("SELECT key, value FROM memo").fetchall():
        data = json.loads(value)
        if isinstance(data, list) and len(data) == 7 and isinstance(data[2], list):  # a rendered note
            attack = r"\(\href{javascript:alert(1)}{x}\)" if forged % 2 else r"\(&#92;href{javascript:x()}{y}\)"
            data[2] = [f + attack for f in data[2]]
            db.execute("UPDATE memo SET value = ? WHERE key = ?", (json.dumps(data), key))
            forged += 1
    db.commit()
    db.close()
    assert forged > 0
    rebuilt = build_at(sample, out).output.read_bytes()
    assert rebuilt == clean
    assert b"javascript" not in rebuilt


@pytest.mark.parametrize("where", ["here", "workers", "a worker fails"])
def test_forged_cached_html_passes_the_safety_net_and_fresh_renders_need_none(
    where: str, sample: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only what comes from the cache goes through the safety net (the renderer's own output is already
    clean): forged notes and intros lose their script, handler and unclosed element; a fresh render is
    exactly what the safety net would make of it. A big deck's net runs in workers while the build goes
    on; one that fails leaves its notes to the net here."""
    import sqlite3

    folder = tmp_path / "out" / CACHE_DIR
    fresh = compile_deck(sample, T0, cache_dir=folder)
    assert fresh.intros and all(render.safe_note(rn) == rn for rn in fresh.notes)
    assert all(render.safe_html(html) == html for html in fresh.intros.values())
    db = sqlite3.connect(folder / CACHE_FILE)
    attack = '<script>alert(1)</script><img src="a.png" onerror="y()"><details open><a href="javascript:z()">'
    notes = intros = 0
    for key, value in db.execute("SELECT key, value FROM memo").fetchall():
        data = json.loads(value)
        if isinstance(data, list) and len(data) == 7 and isinstance(data[2], list):  # a rendered note
            data[2] = [f + attack for f in data[2]]
            notes += 1
        elif isinstance(data, str) and data.startswith("<"):  # an intro
            data += attack
            intros += 1
        else:
            continue
        db.execute("UPDATE memo SET value = ? WHERE key = ?", (json.dumps(data), key))
    db.commit()
    db.close()
    assert notes and intros
    nets = 0
    real_submit, real_net, parent = WorkPool.submit, incremental.safety_net, os.getpid()

    def noting(self: WorkPool, fn: Any, *args: Any):  # type: ignore[no-untyped-def]
        nonlocal nets
        nets += fn is incremental.safety_net
        return real_submit(self, fn, *args)

    def failing_in_workers(items: Any) -> Any:
        if os.getpid() != parent:
            raise MemoryError("a worker that ran out of memory")
        return real_net(items)

    monkeypatch.setattr(WorkPool, "submit", noting)
    if where != "here":
        monkeypatch.setattr(incremental, "NET_POOL_MIN_SECONDS", 0.0)
        monkeypatch.setattr(incremental, "NET_BATCH", 3)
    if where == "a worker fails":
        monkeypatch.setattr(incremental, "safety_net", failing_in_workers)
    served = compile_deck(sample, T0, cache_dir=folder, jobs=2)
    assert (nets > 2) == (where != "here")
    # the field hashes the net computed for the lock are the ones the lock computes itself
    hashed_here = update_lock(served.lock, served.notes, all_notetypes(), T0, served.deck.config.uuid)[0]
    assert served.new_lock == hashed_here and served.new_lock.notes
    texts = [f for rn in served.notes for f in rn.fields] + list(served.intros.values())
    assert sum("a.png" in t for t in texts) >= notes  # the forged entries were used, not missed
    for text in texts:
        assert not re.search(r"<script|<[^>]*\bonerror|<[^>]*javascript:", text)  # escaped text is inert
        assert text.count("<details") == text.count("</details>")


def _forge(cache: Path, attack: str) -> int:
    """Append ``attack`` to every field of every cached render in the cache file ``cache``; how many."""
    import sqlite3

    db = sqlite3.connect(cache)
    forged = 0
    for key, value in db.execute("SELECT key, value FROM memo").fetchall():
        data = json.loads(value)
        if isinstance(data, list) and len(data) == 7 and isinstance(data[2], list):  # a rendered note
            data[2] = [f + attack for f in data[2]]
            db.execute("UPDATE memo SET value = ? WHERE key = ?", (json.dumps(data), key))
            forged += 1
    db.commit()
    db.close()
    return forged


@pytest.mark.parametrize("case", ["served", "edited", "a worker fails", "forged", "forged math"])
def test_a_big_warm_build_takes_its_cached_renders_from_the_prefetch_workers(
    case: str, sample: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, conversions: list[str]
) -> None:
    """A big deck's warm build has workers read and net the last build's renders while it reads and parses:
    the build itself reads, nets and renders none of them, and writes the cold build's bytes. An edited
    note is rendered; a worker that fails leaves its notes to be read and netted here; a forged entry
    loses its script in the workers' net, and one naming unsafe math is rendered again from the source."""
    monkeypatch.setattr(prefetch, "PREFETCH_MIN_NOTES", 1)  # (the sample deck is small)
    out, twin = tmp_path / "out", tmp_path / "twin"
    build(sample, out, now=T0, jobs=2)
    if case == "edited":
        _edit(sample / "general.md", "Python for modelling, SQL for data.", "Python and SQL, daily.")
    if case.startswith("forged"):
        attack = (
            r"\(\href{javascript:x()}{y}\)" if case == "forged math" else '<script>alert(1)</script><b onclick="z()">'
        )
        assert _forge(out / CACHE_DIR / CACHE_FILE, attack) > 0
    shutil.copytree(sample, twin)  # the same sources and lock
    submitted: list[str] = []
    netted_here: list[int] = []
    real_submit, real_net, parent = WorkPool.submit, incremental.safety_net, os.getpid()

    def noting(self: WorkPool, fn: Any, *args: Any):  # type: ignore[no-untyped-def]
        submitted.append(fn.__name__)
        return real_submit(self, fn, *args)

    def netting(items: Any) -> Any:
        if os.getpid() == parent:
            netted_here.extend(i for i, _, _ in items)
        return real_net(items)

    def failing(path: str, keys: bytes) -> Any:
        raise MemoryError("a worker that ran out of memory")

    monkeypatch.setattr(WorkPool, "submit", noting)
    monkeypatch.setattr(incremental, "safety_net", netting)
    if case == "a worker fails":
        monkeypatch.setattr(prefetch, "read_and_net", failing)
    conversions.clear()
    warm = build(sample, out, now=T0 + 60, jobs=2)
    assert "read_and_net" in submitted or case == "a worker fails"
    notes = len(warm.compiled.notes)
    assert len(netted_here) == (notes if case == "a worker fails" else 0)
    if case == "served":
        assert conversions == [] and "process_batch" not in submitted
    if case == "edited":
        assert any("Python and SQL, daily." in c for c in conversions) or "process_batch" in submitted
    if case == "forged math":
        assert len(conversions) >= notes  # every note rendered again here (a small deck's renders stay here)
    if case == "forged":  # served, netted: the script is gone, the rest of the forged field stayed
        texts = [f for rn in warm.compiled.notes for f in rn.fields]
        assert not [t for t in texts if re.search(r"<script|<[^>]*onclick", t)]  # (escaped text is inert)
        assert sum(t.endswith("<b></b>") for t in texts) >= notes
        return
    cold = build(twin, tmp_path / "cold", now=T0 + 60, cache=False)
    assert warm.output.read_bytes() == cold.output.read_bytes()
    assert (sample / "deckgen.lock").read_bytes() == (twin / "deckgen.lock").read_bytes()
    # What the workers served is kept: the next build is served the same way.
    submitted.clear()
    monkeypatch.setattr(prefetch, "read_and_net", real_read_and_net)
    assert build(sample, out, now=T0 + 120, jobs=2).output.read_bytes() == warm.output.read_bytes()
    assert "read_and_net" in submitted and "process_batch" not in submitted


real_read_and_net = prefetch.read_and_net


_BUILD_PID: list[int] = []  # the build process, for ``_slow_in_workers``
_NETTED_HERE: list[bytes] = []  # the batches it read and netted itself


def _slow_in_workers(path: str, keys: bytes) -> Any:
    """``read_and_net``, slow in a worker (which gets it by name: a function of a test could not be sent)."""
    if os.getpid() in _BUILD_PID:
        _NETTED_HERE.append(keys)
    else:
        time.sleep(0.05)  # (a worker takes longer over its batch than the build needs to get there)
    return real_read_and_net(path, keys)


def test_prefetch_batches_no_worker_has_started_are_read_and_netted_by_the_build(
    sample: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the build needs the renders, it does not wait for the workers to reach the batches still queued:
    it reads and nets those itself (the last first) while the workers finish theirs; same bytes as cold."""
    monkeypatch.setattr(prefetch, "PREFETCH_MIN_NOTES", 1)
    monkeypatch.setattr(prefetch, "PREFETCH_BATCH", 1)  # a batch per note
    out, twin = tmp_path / "out", tmp_path / "twin"
    build(sample, out, now=T0, jobs=2)
    shutil.copytree(sample, twin)
    monkeypatch.setattr(prefetch, "read_and_net", _slow_in_workers)
    _BUILD_PID[:], _NETTED_HERE[:] = [os.getpid()], []
    warm = build(sample, out, now=T0 + 60, jobs=2)
    assert 0 < len(_NETTED_HERE) < len(warm.compiled.notes)  # some batches here, the started ones in workers
    assert warm.output.read_bytes() == build(twin, tmp_path / "cold", now=T0 + 60, cache=False).output.read_bytes()


@pytest.mark.skipif(sys.platform != "linux", reason="pipe sizes are a Linux setting")
def test_a_workers_result_pipe_holds_a_whole_batch() -> None:
    """A batch's result (hundreds of kB) goes into the pipe at once: the worker does not wait for this
    process to drain it in 64 KiB pieces."""
    import fcntl

    from deckgen.build import parallel

    with WorkPool(2) as pool:
        pool.start(warm_up=False)
        reader = pool._executor._result_queue._reader  # type: ignore[union-attr]
        assert fcntl.fcntl(reader.fileno(), 1032) >= parallel.RESULT_PIPE_BYTES  # F_GETPIPE_SZ
        assert pool.submit(bytes, 900_000).result() == bytes(900_000)


_BARRIER = Path(os.environ.get("TMPDIR", "/tmp")) / f"deckgen-test-barrier-{os.getpid()}"


def _held_batch(*args: Any) -> Any:
    """``process_batch`` in a worker that first waits (up to 60 s) for ``_BARRIER`` to exist; it notes a
    wait that timed out beside it."""
    for _ in range(600):
        if _BARRIER.exists():
            break
        time.sleep(0.1)
    else:
        _BARRIER.with_suffix(".timed-out").touch()
    return real_process_batch(*args)


real_process_batch = incremental.process_batch


def test_a_note_a_worker_is_still_rendering_is_linted_here_not_waited_for(
    sample: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The checks need every note's findings; an edited note's worker may still be importing the
    converter: its few notes are linted here and the checks go on. The result is the serial build's."""
    monkeypatch.setattr(prefetch, "PREFETCH_MIN_NOTES", 1)
    out = tmp_path / "out"
    build(sample, out, now=T0, jobs=2)
    _edit(sample / "general.md", "Python for modelling, SQL for data.", "Python and SQL, daily.")
    _edit(
        sample / "general.md", "## ", "## Why is the sky blue?\n<!-- id: new-note -->\n\n<b>Bold</b> Rayleigh.\n\n## "
    )
    twin = tmp_path / "twin"
    shutil.copytree(sample, twin)
    real_check = pipeline.check_deck

    def checking(*args: Any) -> Any:
        found = real_check(*args)
        _BARRIER.touch()  # the held worker may go on only once the checks are done
        return found

    monkeypatch.setattr(incremental, "process_batch", _held_batch)
    monkeypatch.setattr(pipeline, "check_deck", checking)
    try:
        warm = build(sample, out, now=T0 + 60, jobs=2)
        assert not _BARRIER.with_suffix(".timed-out").exists()  # the checks did not wait for the worker
    finally:
        _BARRIER.unlink(missing_ok=True)
        _BARRIER.with_suffix(".timed-out").unlink(missing_ok=True)
    serial = build(twin, tmp_path / "serial", now=T0 + 60, jobs=1, cache=False)
    assert warm.output.read_bytes() == serial.output.read_bytes()
    assert warm.compiled.diagnostics == serial.compiled.diagnostics


def test_a_build_runs_without_cyclic_collection_except_where_it_renders(
    sample: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Parsing, restoring and packaging make no cycles: the collector is off while a build or check runs
    and back on afterwards; the converter makes cyclic garbage, so rendering here, or in a worker
    forked from the build, turns it on."""
    import gc

    from deckgen.build import parallel

    seen: list[tuple[str, bool]] = []
    real_convert = render.Renderer.convert

    def noting(self: render.Renderer, text: str, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        seen.append(("render", gc.isenabled()))
        return real_convert(self, text, *args, **kwargs)  # type: ignore[arg-type]

    real_check = pipeline.check_deck

    def checking(*args: Any) -> Any:
        seen.append(("check", gc.isenabled()))
        return real_check(*args)

    monkeypatch.setattr(render.Renderer, "convert", noting)
    monkeypatch.setattr(pipeline, "check_deck", checking)
    assert gc.isenabled()
    build(sample, tmp_path / "out", now=T0, jobs=1)  # a small deck: rendered here
    assert gc.isenabled()
    assert seen[0] == ("check", False) and ("render", True) in seen
    seen.clear()
    build(sample, tmp_path / "out", now=T0 + 60, jobs=1)  # all from the cache: nothing rendered
    assert seen == [("check", False)] and gc.isenabled()
    with parallel.no_cycle_collection(), WorkPool(2) as pool:
        assert not gc.isenabled() and pool.submit(gc.isenabled).result()  # a forked worker collects
    assert gc.isenabled()


def test_maker_builds_the_object_the_constructor_builds_and_refuses_a_class_whose_init_does_more() -> None:
    place = SourceLocation(Path("a.md"), 3, 2)
    made = plain.maker(SourceLocation)(Path("a.md"), 3, 2)
    assert made == place and hash(made) == hash(place) and type(made) is SourceLocation
    assert plain.maker(SourceLocation) is plain.maker(SourceLocation)  # made once per class
    values = ("n1", "Why?", Body("Because.", 4), place, None, ("t",), ("old",), "", True, False, "", frozenset({"x"}))
    values += ("", False, None, "")
    for cls in (Question, Tip, Faq):
        note = plain.maker(cls)(*values)
        assert note == cls(*values) and type(note) is cls
    with pytest.raises(dataclasses.FrozenInstanceError):
        note.id = "other"  # type: ignore[misc]

    @dataclasses.dataclass(frozen=True, slots=True)
    class Checked:
        n: int

        def __post_init__(self) -> None:
            if self.n < 0:
                raise ValueError

    with pytest.raises(TypeError, match="does more than set its fields"):
        plain.maker(Checked)
