"""tests/data/good: inputs that must build cleanly, checked where it matters — in real Anki."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from anki.sound import SoundOrVideoTag, TTSTag

from conftest import DATA, Anki, build_at
from deckgen.build.pipeline import check_sources

GOOD = DATA / "good"


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Anki]:
    tmp = tmp_path_factory.mktemp("good")
    source = tmp / "source"
    shutil.copytree(GOOD, source, ignore=shutil.ignore_patterns("deckgen.lock"))
    assert check_sources(source) == ()
    result = build_at(source, tmp / "out", strict=True)
    anki = Anki(tmp / "collection.anki2")
    assert anki.import_package(result.output).new == len(result.compiled.notes)
    yield anki
    anki.close()


def _tags(tags: list[object]) -> list[tuple[str, str]]:
    return [(t.lang, t.field_text) if isinstance(t, TTSTag) else ("sound", t.filename) for t in tags]  # type: ignore[attr-defined]


def test_every_good_file_builds_strictly(imported: Anki) -> None:
    assert {"speech", "details"} <= {p.stem for p in GOOD.glob("*.md")}
    for note_id in ("good-hund", "good-hello", "good-silent", "good-tts-cloze", "good-details", "good-details-cloze"):
        assert imported.cards_of(note_id)


def test_sounds_are_packaged_under_hashed_names_and_played_by_anki(imported: Anki) -> None:
    (card,) = imported.cards_of("good-hund")
    answer = _tags(card.answer_av_tags())
    assert answer[0][0] == "sound" and re.fullmatch(r"dg-[0-9a-f]{20}\.ogg", answer[0][1])
    assert (Path(imported.col.media.dir()) / answer[0][1]).read_bytes() == (GOOD / "sounds" / "bark.ogg").read_bytes()
    (card,) = imported.cards_of("good-hello")
    assert _tags(card.answer_av_tags())[0][0] == "sound" and isinstance(card.answer_av_tags()[0], SoundOrVideoTag)


def test_text_to_speech_follows_the_file_and_the_note_option(imported: Anki) -> None:
    (card,) = imported.cards_of("good-hund")
    assert _tags(card.question_av_tags()) == [("de_DE", "Was sagt ein Hund?")]
    assert "[anki:play:q:0]" in card.question()
    assert _tags(card.answer_av_tags())[1] == ("de_DE", "Wuff!")
    (card,) = imported.cards_of("good-hello")
    (tag,) = card.question_av_tags()
    assert isinstance(tag, TTSTag) and tag.lang == "en_US" and abs(tag.speed - 0.9) < 1e-6
    (card,) = imported.cards_of("good-silent")
    assert card.question_av_tags() == [] and card.answer_av_tags() == []


def test_a_cloze_note_reads_its_heading_but_never_its_gaps(imported: Anki) -> None:
    (card,) = imported.cards_of("good-tts-cloze")
    assert _tags(card.question_av_tags()) == [("de_DE", "Cloze read aloud?")]
    assert "hidden part" not in str(card.question_av_tags()) + str(card.answer_av_tags())


def test_markdown_inside_details_reaches_the_card_rendered(imported: Anki) -> None:
    (card,) = imported.cards_of("good-details")
    back = card.answer()
    assert "<summary>Why <strong>bold</strong>" in back and "<li>one</li>" in back
    assert "**" not in back and "$" not in back and "\\(a_i\\)" in back and "E = mc^2" in back
    (card,) = imported.cards_of("good-details-cloze")
    front = re.sub(r'data-cloze="[^"]*"', "", card.question())  # Anki keeps the hidden text in an attribute
    assert '<span class="cloze"' in front and "[...]" in front and "Paris" not in front
    assert "<strong>Paris</strong>" in card.answer()
