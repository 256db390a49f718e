"""``deckgen import``: Markdown Q&A lists and Anki decks become sources that build, with ids, GUIDs and reviews kept."""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from anki import import_export_pb2
from anki.collection import ImportAnkiPackageOptions, ImportAnkiPackageRequest
from anki.sound import TTSTag
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from anki_decks import ROOT, add_user_deck, change_notetype_by_hand, export_deck
from conftest import REPO, T0, Anki, ImportLog, build_at
from deckgen.build.pipeline import check_sources
from deckgen.cli import main
from deckgen.errors import Severity
from deckgen.importing.html import field_to_markdown
from deckgen.importing.qa import parse_qa

DATA = Path(__file__).parent / "data" / "import"
INPUTS = sorted((DATA / "input").glob("*.md"))
EXPECTED = DATA / "expected"
MINE = 'name = "Mine"\nuuid = "5b0f7c1e-3d2a-4c59-9a47-2f1e8d6b0c33"\n'
UUID_LINE = re.compile(rb'^uuid = "[0-9a-f-]{36}"$', re.M)


def _import(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["import", *args])
    return result.exit_code, result.output


# --- Markdown Q&A lists -------------------------------------------------------------------


def test_qa_lists_import_to_golden_files_that_check_clean(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    source = tmp_path / "source"
    code, output = _import(*map(str, INPUTS), "--to", str(source))
    assert code == 0, output
    written = sorted(p.name for p in source.glob("*.md"))
    if request.config.getoption("--update-golden"):
        shutil.rmtree(EXPECTED, ignore_errors=True)
        shutil.copytree(source, EXPECTED, ignore=shutil.ignore_patterns("*.lock"))
    assert written == sorted(p.name for p in EXPECTED.glob("*.md"))
    expected = sorted(p.relative_to(EXPECTED) for p in EXPECTED.rglob("*") if p.is_file())
    assert sorted(p.relative_to(source) for p in source.rglob("*") if p.is_file() and p.suffix != ".lock") == expected
    for name in expected:  # a new deck gets a fresh uuid: the one thing that differs each time
        assert UUID_LINE.sub(b"uuid", (source / name).read_bytes()) == UUID_LINE.sub(
            b"uuid", (EXPECTED / name).read_bytes()
        )
    assert check_sources(source) == ()
    assert "imported 16 notes" in output and "check: 0 errors, 0 warnings" in output
    # the question without an answer is named, not silently dropped
    assert "sql-cheatsheet.md:29:1: warning: question 'What is a window function?' has no answer" in output


@pytest.mark.parametrize(
    ("text", "prompts"),
    [
        ("## What is A?\nAlpha.\n## What is B?\nBeta.\n", ["What is A?", "What is B?"]),
        ("# T\n## Part\n### 1. What is A?\nAlpha.\n", ["What is A?"]),
        ("**What is A?**\n\nAlpha.\n\n**What is B?**\nBeta.\n", ["What is A?", "What is B?"]),
        ("- **What is A?**\n\n  Alpha.\n", ["What is A?"]),
        ("**Q:** What is A?\n**A:** Alpha.\n", ["What is A?"]),
        ("1. What is A?\n   Alpha.\n2. What is B?\n\n   Beta.\n", ["What is A?", "What is B?"]),
        ("<details><summary>What is A?</summary>\n\nAlpha.\n</details>\n", ["What is A?"]),
        ("## What is A?\n<details>\n<summary>Show answer</summary>\n\nAlpha.\n</details>\n", ["What is A?"]),
        ("## What is A?\n```\n## not a question?\n```\n", ["What is A?"]),
        ("## What is A?\n\n**Why?**\n\n1. Is it?\n2. Yes.\n", ["What is A?"]),  # heading files: headings only
    ],
)
def test_each_common_layout_is_recognised(text: str, prompts: list[str]) -> None:
    categories, problems = parse_qa(text.encode(), Path("qa.md"))
    assert [n.prompt for c in categories for n in c.notes] == prompts
    assert [p for p in problems if p.severity is Severity.ERROR] == []


def test_a_rule_ends_an_answer_and_a_footer_after_it_is_named_not_imported() -> None:
    text = "# T\n\nQ: What is A?\nA: Alpha.\n\n---\n\nContributions welcome!\n"
    (category,), problems = parse_qa(text.encode(), Path("qa.md"))
    assert [(n.prompt, n.answer) for n in category.notes] == [("What is A?", "Alpha.")]
    assert [(p.rule, p.location.line) for p in problems] == [("import-text-skipped", 8)]


def test_a_setext_underline_is_not_a_rule() -> None:
    (category,), problems = parse_qa(b"**What is A?**\nAlpha\n---\nmore.\n", Path("qa.md"))
    assert category.notes[0].answer == "Alpha\n---\nmore." and problems == []


_LINES = st.sampled_from(
    ["# T", "## Q?", "### Sub?", "**Bold?**", "1. Num?", "Q: Ask?", "A: Reply.", "text $5", "```", "---", "",
     "<details>", "<summary>Answer</summary>", "<summary>Why?</summary>", "</details>", "   indented", "- item",
     "A {{Front}} b", "$$", "\\(a", "b\\)", "#### Deep", "| a | b |", "|---|---|", "`code $`", "~~~",
     "<div>", "</div>", "1) Paren?", "__Under?__", "> quote?", "text\\"]
)  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(st.lists(_LINES, max_size=25))
def test_any_mix_of_layouts_gives_notes_with_prompt_and_answer_never_a_crash(lines: list[str]) -> None:
    categories, problems = parse_qa("\n".join(lines).encode(), Path("qa.md"))
    for category in categories:
        assert category.deck and category.notes
        for note in category.notes:
            assert note.prompt and "\n" not in note.prompt and note.answer.strip()
    assert all(p.severity is Severity.WARNING for p in problems)


@settings(max_examples=60, deadline=None)
@given(st.lists(_LINES, min_size=1, max_size=25))
def test_whatever_is_imported_passes_check(lines: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "qa.md").write_text("\n".join(lines))
        code, output = _import(str(Path(tmp) / "qa.md"), "--to", str(Path(tmp) / "source"))
        assert code == 0 or "nothing to import" in output, output
        if code == 0:
            assert "check: 0 errors" in output, output


def test_answers_are_unwrapped_dedented_and_headings_inside_become_bold() -> None:
    text = "## What is A?\n<details><summary>Answer</summary>\n\n  #### Detail\n  x = 1 costs $a$\n</details>\n"
    (category,), _ = parse_qa(text.encode(), Path("qa.md"))
    assert category.notes[0].answer == "**Detail**\nx = 1 costs $a$"


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("Just $5.", "Just \\$5."),  # an odd '$' cannot be math: the amount is escaped
        ("From $1,200 to `$HOME` or $x$.", "From \\$1,200 to `$HOME` or $x$."),
        ("It costs $5 or $50 a year.", "It costs $5 or $50 a year."),  # balanced: left as written
        ("The median of $1, 2, 100$ is $2$.", "The median of $1, 2, 100$ is $2$."),
    ],
)
def test_amounts_of_money_that_would_open_math_are_escaped(answer: str, expected: str) -> None:
    (category,), _ = parse_qa(f"## How much?\n\n{answer}\n".encode(), Path("qa.md"))
    assert category.notes[0].answer == expected


def test_cloze_syntax_and_stray_math_in_a_qa_list_stay_text() -> None:
    text = "## What is {{c1::x}}?\n\nType {{c1::Paris}} in `{{c1::code}}`; \\(unclosed and $$ too.\n"
    (category,), _ = parse_qa(text.encode(), Path("qa.md"))
    (note,) = category.notes
    assert note.prompt == "What is \\{\\{c1::x}}?"
    assert note.answer == "Type \\{\\{c1::Paris}} in `{{c1::code}}`; (unclosed and \\$\\$ too."


def test_ids_are_readable_and_never_reuse_a_lock_entry_even_a_removed_one(tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    (source / "deckgen.toml").write_text(MINE)
    (source / "old.md").write_text("## What is overfitting?\n<!-- id: overfitting -->\n\nOld answer.\n")
    build_at(source, tmp_path / "out")
    (source / "old.md").write_text("## Anything?\n<!-- id: anything -->\n\nText.\n")
    build_at(source, tmp_path / "out", now=T0 + 10)  # 'overfitting' is now a removed lock entry
    code, output = _import(str(DATA / "input" / "ml-interview-questions.md"), "--to", str(source))
    assert code == 0, output
    text = (source / "fundamentals.md").read_text()
    assert "<!-- id: overfitting-2 -->" in text and "<!-- id: bias-variance-trade-off -->" in text
    assert (source / "deckgen.toml").read_text() == MINE  # never overwritten


def test_local_images_are_copied_along_and_missing_ones_named(tmp_path: Path) -> None:
    (tmp_path / "pics").mkdir()
    (tmp_path / "pics" / "a.png").write_bytes((DATA / "input" / "img" / "loss-curves.png").read_bytes())
    (tmp_path / "qa.md").write_text(
        "## What is shown?\n\n![A](pics/a.png) <img src='pics/a.png'> ![web](https://x.org/b.png)\n\n"
        "## And here?\n\n![gone](pics/gone.png)\n"
    )
    code, output = _import(str(tmp_path / "qa.md"), "--to", str(tmp_path / "source"))
    text = (tmp_path / "source" / "qa.md").read_text()
    assert "![A](images/a.png) <img src='images/a.png'> ![web](https://x.org/b.png)" in text
    assert (tmp_path / "source" / "images" / "a.png").is_file()
    assert (
        "qa.md:5:1: warning: 'pics/gone.png' not found beside the input; reference kept [import-media-missing]"
        in output
    )
    assert code == 1 and "image-missing" in output  # check names it again, at its place in the new file


def test_dry_run_writes_nothing_and_nothing_is_ever_overwritten(tmp_path: Path) -> None:
    source = tmp_path / "source"
    code, output = _import(str(INPUTS[0]), "--to", str(source), "--dry-run")
    assert code == 0 and "dry run" in output and not source.exists()
    assert "    + overfitting  What is overfitting?\n" in output
    assert _import(str(INPUTS[0]), "--to", str(source))[0] == 0
    before = {p: p.read_bytes() for p in source.rglob("*") if p.is_file()}
    code, output = _import(str(INPUTS[0]), "--to", str(source))  # the same file again: new names
    assert code == 0, output
    assert all(path.read_bytes() == data for path, data in before.items())
    assert "already exists; imported as" in output


def test_a_file_without_questions_is_reported_and_nothing_written(tmp_path: Path) -> None:
    (tmp_path / "notes.md").write_text("# Notes\n\nJust prose, no questions here.\n")
    code, output = _import(str(tmp_path / "notes.md"), "--to", str(tmp_path / "source"))
    assert code == 1
    assert "notes.md:1:1: warning: no questions found [import-nothing-found]" in output
    assert "nothing to import" in output and not (tmp_path / "source").exists()


def test_without_to_it_imports_into_the_deck_found_else_starts_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert _import(str(INPUTS[0]))[0] == 0 and (tmp_path / "source" / "fundamentals.md").is_file()
    (tmp_path / "source" / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "source" / "sub")  # found like git finds a repository: the nearest parent
    code, output = _import(str(INPUTS[1]))
    assert code == 0 and (tmp_path / "source" / "python-faq.md").is_file(), output


def test_import_then_build_in_real_subprocesses(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    run = [sys.executable, "-m", "deckgen"]
    done = subprocess.run(
        [*run, "import", *map(str, INPUTS), "--to", "src"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    done = subprocess.run(
        [*run, "build", "src", "-o", "out", "-j", "1"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "16 notes" in done.stdout and (tmp_path / "out" / "machine-learning-interview-questions.apkg").is_file()


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        ([], 2, "give at least one FILE"),
        (["notes.txt"], 2, "give .md (Q&A lists) or .apkg (Anki) files"),
        (["--collection", "x.anki2"], 2, "--collection and --deck go together"),
        (["broken.apkg"], 1, "broken.apkg: not a package Anki can read"),
        (["--collection", "x.anki2", "--deck", "X"], 1, "x.anki2: cannot open the collection"),
    ],
)
def test_bad_arguments_and_unreadable_inputs_are_messages_not_tracebacks(
    args: list[str], code: int, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("notes.txt", "broken.apkg", "x.anki2"):
        (tmp_path / name).write_text("not what it claims to be")
    result = CliRunner().invoke(main, ["import", *args, "--to", "src"])
    assert result.exit_code == code and message in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert not (tmp_path / "src").exists()


def test_a_deck_not_in_the_collection_lists_the_ones_that_are(physics: Physics, tmp_path: Path) -> None:
    code, output = _import("--collection", str(physics.collection), "--deck", "Chemistry", "--to", str(tmp_path / "s"))
    assert code == 1 and "no deck named 'Chemistry'; decks: Default, Physics, Physics::Mechanics," in output


# --- Anki field HTML → Markdown ------------------------------------------------------------


def test_field_html_becomes_markdown_with_math_cloze_and_media_kept() -> None:
    html = (
        "<div>Is <b>F</b> = m_a * 2 worth $5?</div><div>\\(a_i * b &lt; c\\)</div>"
        '<img src="my%20pic.png"> {{c1::\\(x_1\\)::hint}} [sound:a b.mp3]<sup>2</sup>'
    )
    out = field_to_markdown(html, lambda n: f"images/{n}", lambda n: f"sounds/{n}")
    assert out.markdown == (
        "Is **F** = m\\_a \\* 2 worth \\$5?\n\n\\(a_i * b < c\\)\n\n"
        "![](images/my%20pic.png) {{c1::\\(x_1\\)::hint}} [sound:sounds/a b.mp3]<sup>2</sup>"
    )
    assert out.images == ["my pic.png"] and out.sounds == ["a b.mp3"]


@settings(max_examples=60, deadline=None)
@given(
    math=st.text(alphabet="ab_*^{}<>&|\\ 12+=", min_size=1, max_size=30).filter(
        lambda m: "\\)" not in m and "\\]" not in m and not m.endswith("\\")
    ),
    display=st.booleans(),
)
def test_math_in_a_field_reaches_markdown_byte_for_byte(math: str, display: bool) -> None:
    opener, closer = ("\\[", "\\]") if display else ("\\(", "\\)")
    field = f"<b>Here</b> {opener}{html.escape(math)}{closer} {{{{c1::{opener}{html.escape(math)}{closer}}}}} end"
    out = field_to_markdown(field, lambda n: n, lambda n: n).markdown
    assert out.count(f"{opener}{math}{closer}") == 2


def test_code_blocks_keep_their_language_when_the_html_names_it() -> None:
    html_code = '<pre><code class="language-python">x = {"a": 1}  # a_b * c\n</code></pre><pre><code>plain</code></pre>'
    out = field_to_markdown(html_code, lambda n: n, lambda n: n).markdown
    assert out == '```python\nx = {"a": 1}  # a_b * c\n```\n\n```\nplain\n```'


def test_media_that_cannot_be_had_is_left_out_by_the_callers_choice() -> None:
    out = field_to_markdown('A <img src="gone.png"> [sound:gone.mp3] B', lambda n: None, lambda n: None)
    assert out.markdown.split() == ["A", "B"] and out.images == ["gone.png"]


# --- An Anki deck with reviews, round trip through real Anki ------------------------------


@dataclass
class Physics:
    """The user's collection (reviewed), its export, and the deckgen sources imported from it."""

    collection: Path
    apkg: Path
    source: Path
    schedule: dict[int, tuple[int, int, int, int]]  # card id → (ivl, due, type, queue)
    revlog: int


def _schedule(anki: Anki) -> dict[int, tuple[int, int, int, int]]:
    rows = anki.col.db.all("select id, ivl, due, type, queue from cards")
    return {r[0]: (r[1], r[2], r[3], r[4]) for r in rows}


@pytest.fixture(scope="module")
def physics(tmp_path_factory: pytest.TempPathFactory) -> Physics:
    tmp = tmp_path_factory.mktemp("physics")
    (tmp / "user").mkdir()
    anki = Anki(tmp / "user" / "collection.anki2")
    add_user_deck(anki.col)
    assert anki.review_all(ROOT) == 10  # 5 basic cards, 2 of a reversed note, 1 typed, 2 cloze cards
    schedule, revlog = _schedule(anki), anki.col.db.scalar("select count() from revlog")
    apkg = export_deck(anki.col, tmp / "physics.apkg")
    anki.close()
    code, output = _import(str(apkg), "--to", str(tmp / "source"))
    assert code == 0, output
    return Physics(tmp / "user" / "collection.anki2", apkg, tmp / "source", schedule, revlog)


def test_apkg_import_writes_readable_sources_with_guids_media_and_tags(physics: Physics) -> None:
    source = physics.source
    assert sorted(p.relative_to(source).as_posix() for p in source.rglob("*.md")) == [
        "general.md",
        "mechanics.md",
        "mechanics/dynamics.md",  # Physics::Mechanics::Dynamics: a subdeck in a folder
        "optics.md",
    ]
    dynamics = (source / "mechanics" / "dynamics.md").read_text()
    assert dynamics.startswith("---\ndeck: Dynamics\n---\n") and "![](../images/lens%20diagram.png)" in dynamics
    mechanics = (source / "mechanics.md").read_text()
    assert "## What does Newton's second law state?\n<!-- id: newtons-second-law-state -->\n<!-- guid: " in mechanics
    assert "\\(F = m a\\), with **net** force \\(F\\)" in mechanics
    assert "<!-- tags: si units -->" in mechanics and "\\[ 1\\,N = 1\\,kg\\,m/s^2 \\]" in mechanics
    assert "## SI unit of energy?\n<!-- id: si-unit-energy -->\n<!-- guid: " in mechanics
    assert "<!-- type-in: joule -->\n\njoule" in mechanics
    assert "<!-- cloze -->\n\nKinetic energy is {{c1::\\(\\tfrac12 m v^2\\)}}" in mechanics
    assert "<!-- extra -->\nBoth use mass." in mechanics
    optics = (source / "optics.md").read_text()
    assert "![](images/lens%20diagram.png)" in optics
    assert "## Refraction\n<!-- id: refraction -->\n<!-- guid: " in optics and "<!-- reverse -->" in optics
    assert optics.startswith("---\ndeck: Optics\n---\n")  # one note of two reads aloud: a note option, no front matter
    assert "<!-- reverse -->\n<!-- tts: en_US speed=0.9 -->" in optics
    assert "costs \\$0 to remember [sound:sounds/c.mp3]" in (source / "general.md").read_text()
    assert (source / "images" / "lens diagram.png").is_file() and (source / "sounds" / "c.mp3").is_file()
    assert re.fullmatch(r'name = "Physics"\nuuid = "[0-9a-f-]{36}"\n', (source / "deckgen.toml").read_text())
    # no errors; the one warning is advice about the user's own wording
    assert [(d.rule, d.location.line) for d in check_sources(source)] == [("prompt-not-question", 13)]


def test_collection_deck_imports_the_same_as_its_package(physics: Physics, tmp_path: Path) -> None:
    code, output = _import("--collection", str(physics.collection), "--deck", "physics", "--to", str(tmp_path / "s"))
    assert code == 0, output
    for path in physics.source.rglob("*"):
        if path.is_file() and path.name != "deckgen.lock":
            mine = (tmp_path / "s" / path.relative_to(physics.source)).read_bytes()
            assert UUID_LINE.sub(b"uuid", mine) == UUID_LINE.sub(b"uuid", path.read_bytes()), path


def _import_with(anki: Anki, apkg: Path, update: str) -> ImportLog:
    condition = getattr(import_export_pb2, f"IMPORT_ANKI_PACKAGE_UPDATE_CONDITION_{update}")
    options = ImportAnkiPackageOptions(update_notes=condition, merge_notetypes=False)
    log = anki.col.import_anki_package(ImportAnkiPackageRequest(package_path=str(apkg), options=options)).log
    return ImportLog(
        len(log.new), len(log.updated), len(log.duplicate), len(log.conflicting), len(log.first_field_match), 0
    )


def test_apkg_round_trip_through_anki_keeps_every_review(physics: Physics, tmp_path: Path) -> None:
    source = tmp_path / "source"
    shutil.copytree(physics.source, source)
    apkg = build_at(source, tmp_path / "out").output
    user = tmp_path / "user"
    shutil.copytree(physics.collection.parent, user)
    anki = Anki(user / "collection.anki2")
    try:
        # 1. the first import finds every note by its original GUID, but under another notetype:
        #    Anki leaves them alone ("conflicting") and adds deckgen's notetypes.
        assert _import_with(anki, apkg, "IF_NEWER") == ImportLog(0, 0, 0, 8, 0, 0)
        # 2. README step: Change Note Type in Anki's browser.
        assert change_notetype_by_hand(anki.col, "Basic", "deckgen Basic", {"Prompt": "Front", "Answer": "Back"}) == 5
        assert change_notetype_by_hand(anki.col, "Cloze", "deckgen Cloze", {"Text": "Text", "Extra": "Back Extra"}) == 1
        fields = {"Prompt": "Front", "Answer": "Back"}
        assert change_notetype_by_hand(anki.col, "Basic (and reversed card)", "deckgen Basic", fields, (0, 1)) == 1
        assert change_notetype_by_hand(anki.col, "Basic (type in the answer)", "deckgen Basic", fields) == 1
        # 3. README step: import again with "Update notes: Always", once.
        assert _import_with(anki, apkg, "ALWAYS") == ImportLog(0, 8, 0, 0, 0, 0)
        assert _schedule(anki) == physics.schedule
        assert anki.col.db.scalar("select count() from revlog") == physics.revlog
        assert anki.col.note_count() == 8 and anki.col.card_count() == 10
        (typed,) = anki.cards_of("si-unit-energy")
        assert 'id="typeans"' in typed.question() and anki.note_by_id_field("si-unit-energy")["TypeIn"] == "joule"
        assert [c.ord for c in anki.cards_of("refraction")] == [0, 1]
        (speech,) = anki.cards_of("refraction")[0].question_av_tags()
        assert isinstance(speech, TTSTag) and (speech.lang, speech.field_text) == ("en_US", "Refraction")
        note = anki.note_by_id_field("newtons-second-law-state")
        assert note.note_type()["name"] == "deckgen Basic" and note["Kind"] == "Question"
        assert "<strong>net</strong>" in note["Answer"]
        optics = anki.note_by_id_field("converging-lens")
        (image,) = [m for m in anki.col.media.files_in_str(optics.mid, optics["Answer"]) if m.startswith("dg-")]
        assert (Path(anki.col.media.dir()) / image).is_file()
        light = anki.note_by_id_field("speed-light-vacuum")
        assert "[sound:dg-" in light["Answer"] and light.cards()[0].question_av_tags() == []
        # cards stay where the user keeps them; only new notes land in deckgen's subdecks
        assert anki.col.decks.name(light.cards()[0].did) == "Physics"
        names = sorted(d.name for d in anki.col.decks.all_names_and_ids())
        subdecks = ["General", "Mechanics", "Mechanics::Dynamics", "Optics"]
        assert names == ["Default", "Physics", *(f"Physics::{s}" for s in subdecks)]
        # 4. from now on, the ordinary loop: edit, rebuild, import with default options.
        path = source / "optics.md"
        path.write_text(path.read_text().replace("Focuses parallel rays", "Brings parallel rays to a focus"))
        apkg = build_at(source, tmp_path / "out", now=T0 + 100).output
        assert anki.import_package(apkg) == ImportLog(0, 1, 7, 0, 0, 0)
        assert "Brings parallel rays" in anki.note_by_id_field("converging-lens")["Answer"]
        assert _schedule(anki) == physics.schedule
        assert anki.col.db.scalar("select count() from revlog") == physics.revlog
    finally:
        anki.close()


def test_an_imported_note_keeps_its_guid_and_the_others_derive_theirs(physics: Physics, tmp_path: Path) -> None:
    source = tmp_path / "source"
    shutil.copytree(physics.source, source)
    (source / "extra.md").write_text("## What is new here?\n<!-- id: brand-new -->\n\nThis note.\n")
    compiled = build_at(source, tmp_path / "out").compiled
    guids = {key: entry.guid for key, entry in compiled.new_lock.notes.items()}
    assert "<!-- guid: " + guids["converging-lens"] + " -->" in (source / "optics.md").read_text()
    pinned = {m for path in source.rglob("*.md") for m in re.findall(r"<!-- guid: (\S+) -->", path.read_text())}
    assert len(pinned) == 8 and pinned <= set(guids.values())
    assert guids["brand-new"].startswith("dg") and guids["brand-new"] not in pinned  # derived, as for any new note


def test_a_deckgen_built_deck_imports_back_with_its_ids_guids_kinds_and_sources(
    sample: Path, tmp_path: Path, anki: Anki
) -> None:
    original = build_at(sample, tmp_path / "out0")
    code, output = _import(str(original.output), "--to", str(tmp_path / "back"))
    assert code == 0 and "check: 0 errors, 0 warnings" in output, output
    rebuilt = build_at(tmp_path / "back", tmp_path / "out1")
    ids = {key: entry.guid for key, entry in original.compiled.new_lock.notes.items()}
    assert {key: entry.guid for key, entry in rebuilt.compiled.new_lock.notes.items()} == ids
    assert {rn.note.id: rn.note.source for rn in rebuilt.compiled.notes} == {
        rn.note.id: rn.note.source for rn in original.compiled.notes
    }
    assert "kind: faq" in (tmp_path / "back" / "faq.md").read_text()
    anki.import_package(original.output)
    log = anki.import_package(rebuilt.output)
    assert log.new == 0 and log.conflicting == 0 and anki.col.note_count() == len(ids)


def test_good_corpus_survives_build_import_build_field_for_field(tmp_path: Path) -> None:
    """Sounds, text-to-speech, <details> with Markdown and clozes inside: all come back as they were."""
    good, source = DATA.parent / "good", tmp_path / "good"
    shutil.copytree(good / "sounds", source / "sounds")
    for name in ("deckgen.toml", "speech.md", "details.md"):
        shutil.copyfile(good / name, source / name)
    original = build_at(source, tmp_path / "out0")
    code, output = _import(str(original.output), "--to", str(tmp_path / "back"))
    assert code == 0 and "check: 0 errors, 0 warnings" in output, output
    rebuilt = build_at(tmp_path / "back", tmp_path / "out1")
    fields = {rn.note.id: rn.fields for rn in original.compiled.notes}
    assert {rn.note.id: rn.fields for rn in rebuilt.compiled.notes} == fields
    assert rebuilt.compiled.media == original.compiled.media
