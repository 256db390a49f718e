"""Packages imported into real Anki: subdecks, tags, rendered cards, and the edit/re-import round trip."""

from __future__ import annotations

import html
import re
import zipfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import T0, Anki, build_at


def _cards_state(anki: Anki) -> dict[int, tuple[int, int, int]]:
    return {
        cid: anki.col.db.first("select ivl, due, type from cards where id = ?", cid) for cid in anki.col.find_cards("")
    }


def test_import_creates_subdecks_with_expected_note_counts(sample: Path, out_dir: Path, anki: Anki) -> None:
    result = build_at(sample, out_dir)
    log = anki.import_package(result.output)
    assert log.new == 10 and log.updated == 0 and log.conflicting == 0
    names = {d.name for d in anki.col.decks.all_names_and_ids()}
    expected = {"General": 2, "Technical": 3, "Algorithms and Models": 3, "Tips": 1, "FAQ": 1}
    assert {f"Sample Deck::{k}" for k in expected} <= names
    for sub, count in expected.items():
        assert len(anki.col.find_notes(f'"deck:Sample Deck::{sub}"')) == count


def test_tags_hold_category_kind_and_author_tags(sample: Path, out_dir: Path, anki: Anki) -> None:
    anki.import_package(build_at(sample, out_dir).output)
    tags = set(anki.note_by_id_field("gen-languages").tags)
    assert {"category::general", "kind::question", "topic::general", "topic::tools", "lang::python"} <= tags
    assert "kind::tip" in anki.note_by_id_field("tip-think-aloud").tags
    assert "kind::faq" in anki.note_by_id_field("faq-bring").tags


def test_question_and_answer_html_hold_rendered_text(sample: Path, out_dir: Path, anki: Anki) -> None:
    anki.import_package(build_at(sample, out_dir).output)
    (card,) = anki.cards_of("gen-languages")
    assert "Which languages do you use?" in card.question()
    answer = card.answer()
    assert "<p>Python for modelling, SQL for data.</p>" in answer
    assert 'class="dg-extra"' in answer and "Mention R or Java" in answer
    (l1,) = anki.cards_of("tech-l1")
    assert r"\(\lambda \sum_j |w_j|\)" in l1.answer()
    assert r"\(a_1 &lt; b_2\)" in l1.answer()  # '<' escaped for HTML, restored by the browser
    assert 'class="dg-source">ESL, section 3.4<' in l1.answer()


def test_code_braces_never_become_anki_syntax(sample: Path, out_dir: Path, anki: Anki) -> None:
    anki.import_package(build_at(sample, out_dir).output)
    (card,) = anki.cards_of("tech-dict")
    answer = card.answer()
    assert 'class="highlight"' in answer and "style=" not in answer.split("</style>")[-1]
    text = html.unescape(re.sub(r"<[^>]+>", "", answer.split("</style>")[-1]))
    assert '{"a": {"b": 1}}' in text and "{{not a cloze}}" in text and "{{ like these }}" in text


def test_cloze_note_makes_one_card_per_deletion(sample: Path, out_dir: Path, anki: Anki) -> None:
    anki.import_package(build_at(sample, out_dir).output)
    cards = sorted(anki.cards_of("algo-gd-cloze"), key=lambda c: c.ord)
    assert [c.ord for c in cards] == [0, 1]
    assert "[...]" in cards[0].question() and r"\(\eta\)" in cards[0].question()
    assert r"\(w \leftarrow w - \eta \nabla L\)" in cards[0].answer()


def test_reverse_note_gets_a_second_card(sample: Path, out_dir: Path, anki: Anki) -> None:
    anki.import_package(build_at(sample, out_dir).output)
    cards = sorted(anki.cards_of("algo-epoch"), key=lambda c: c.ord)
    assert [c.ord for c in cards] == [0, 1]
    front = cards[1].question().split("</style>")[-1]
    assert "One full pass" in front and "What is an epoch?" not in front


def test_image_with_space_and_non_ascii_name_is_packaged_and_found(sample: Path, out_dir: Path, anki: Anki) -> None:
    result = build_at(sample, out_dir)
    with zipfile.ZipFile(result.output) as zf:
        assert len(zf.namelist()) == 3  # collection, media map, one image
    anki.import_package(result.output)
    (card,) = anki.cards_of("algo-plot")
    (src,) = re.findall(r'<img[^>]*src="([^"]+)"', card.answer())
    assert re.fullmatch(r"dg-[0-9a-f]{20}\.png", src)
    check = anki.col.media.check()
    assert list(check.missing) == [] and list(check.unused) == []


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


def test_edited_notes_update_in_place_and_keep_reviews(sample: Path, out_dir: Path, anki: Anki) -> None:
    first = build_at(sample, out_dir, now=T0)
    assert anki.import_package(first.output).new == 10
    assert anki.review_all("Sample Deck") == 12
    revlog = anki.col.db.scalar("select count() from revlog")
    before = _cards_state(anki)
    assert all(ivl > 0 or typ != 0 for ivl, _, typ in before.values())

    _edit(sample / "general.md", "Python for modelling, SQL for data.", "Python and SQL, daily.")
    _edit(sample / "tips.md", "## Think aloud", "## Think aloud while solving")
    with (sample / "faq.md").open("a", encoding="utf-8") as fh:
        fh.write("\n## How long is an interview?\n<!-- id: faq-length -->\n\nAbout an hour.\n")
    second = build_at(sample, out_dir, now=T0)  # the same second as the first build
    assert second.compiled.diff.added == ("faq-length",)
    assert {c.id for c in second.compiled.diff.changed} == {"gen-languages", "tip-think-aloud"}

    log = anki.import_package(second.output)
    assert (log.new, log.updated, log.duplicate, log.conflicting, log.first_field_match) == (1, 2, 8, 0, 0)
    assert anki.col.note_count() == 11
    assert anki.col.db.scalar("select count() from revlog") == revlog
    after = _cards_state(anki)
    assert {cid: after[cid] for cid in before} == before
    (card,) = anki.cards_of("gen-languages")
    assert "Python and SQL, daily." in card.answer() and "Python for modelling" not in card.answer()
    assert "Think aloud while solving" in anki.cards_of("tip-think-aloud")[0].question()


def test_reimporting_an_unchanged_rebuild_updates_nothing(sample: Path, out_dir: Path, anki: Anki) -> None:
    anki.import_package(build_at(sample, out_dir, now=T0).output)
    again = build_at(sample, out_dir, now=T0 + 3600)
    assert not again.compiled.diff.any
    log = anki.import_package(again.output)
    assert (log.new, log.updated, log.duplicate) == (0, 0, 10)


def test_two_builds_are_byte_identical(sample: Path, tmp_path: Path) -> None:
    a = build_at(sample, tmp_path / "a", now=T0)
    b = build_at(sample, tmp_path / "b", now=T0 + 999)  # lock is up to date: time must not leak in
    assert a.output.read_bytes() == b.output.read_bytes()
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == [".cache", "sample-deck.apkg"]


def test_failed_build_leaves_previous_package_intact(sample: Path, out_dir: Path) -> None:
    good = build_at(sample, out_dir)
    before = good.output.read_bytes()
    (sample / "tips.md").write_text("## Broken note without id\n\nText\n", encoding="utf-8")
    from deckgen.errors import SourceError

    with pytest.raises(SourceError):
        build_at(sample, out_dir, now=T0 + 5)
    assert good.output.read_bytes() == before
    assert sorted(p.name for p in out_dir.iterdir()) == [".cache", "sample-deck.apkg"]


def test_style_change_updates_the_notetype_in_place_without_a_copy(
    sample: Path, out_dir: Path, anki: Anki, monkeypatch: pytest.MonkeyPatch
) -> None:
    from deckgen.anki import notetypes

    anki.import_package(build_at(sample, out_dir, now=T0).output)
    models_before = sorted(m.name for m in anki.col.models.all_names_and_ids())
    original_css = notetypes.card_css()
    notetypes.basic.cache_clear()
    notetypes.cloze.cache_clear()
    monkeypatch.setattr(notetypes, "card_css", lambda: original_css + "\n.dg-new-rule { color: red; }\n")
    try:
        rebuilt = build_at(sample, out_dir, now=T0 + 60)
        assert not rebuilt.compiled.diff.any  # notes untouched; only the notetypes' look changed
        log = anki.import_package(rebuilt.output)
    finally:
        notetypes.basic.cache_clear()
        notetypes.cloze.cache_clear()
    assert (log.new, log.updated) == (0, 0)
    assert sorted(m.name for m in anki.col.models.all_names_and_ids()) == models_before
    for model_id in (notetypes.BASIC_MODEL_ID, notetypes.CLOZE_MODEL_ID):
        assert ".dg-new-rule" in anki.col.models.get(model_id)["css"]  # type: ignore[index]


@settings(max_examples=300, deadline=None)
@given(st.text(), st.integers(0, 65535))
def test_note_and_card_ids_are_the_ones_every_package_has_had(guid: str, ord_: int) -> None:
    """Anki matches notes and cards by these ids across imports: the formula may be made faster, never
    different (its first form: the first 13 hex digits of the SHA-256 of the parts' repr)."""
    import hashlib

    from deckgen.anki.package import card_id, note_id

    for parts, found in ((("note", guid), note_id(guid)), (("card", guid, ord_), card_id(guid, ord_))):
        digest = hashlib.sha256(repr(parts).encode()).hexdigest()
        assert found == 10**12 + int(digest[:13], 16) % (2**52 - 10**12)
