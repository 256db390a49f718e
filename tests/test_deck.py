"""Invariants of the shipped ML Interview Prep deck, so its content cannot silently rot."""

from __future__ import annotations

import re
import shutil
from collections import Counter
from pathlib import Path

import pytest

from deckgen.build.pipeline import Compiled, compile_deck
from deckgen.sources.check import answer_words

SOURCE = Path(__file__).parent.parent / "source"

ARTICLE_ITEMS = {
    "General": ["gen-why-ml", "gen-programming-languages", "gen-data-analysis-viz", "gen-keep-up"],
    "Technical": ["tech-backpropagation", "tech-l1-vs-l2", "tech-decision-tree", "tech-classification-vs-regression"],
    "Algorithms and Models": [
        "algo-knn",
        "algo-svm-max-margin",
        "algo-support-vectors",
        "algo-cnn",
        "algo-random-forest",
    ],
    "Tips": [
        "tip-ml-vs-traditional-programming",
        "tip-ml-applications",
        "tip-supervised-vs-unsupervised",
        "tip-bias-variance-tradeoff",
        "tip-missing-data",
        "tip-cross-validation",
        "tip-interpret-decision-tree",
        "tip-kmeans-vs-hierarchical",
        "tip-practice-methods",
    ],
    "FAQ": ["faq-is-a-list-enough", "faq-preparation-areas", "faq-dont-know-answer", "faq-what-to-bring"],
}
CURRICULUM = [
    "Math and Statistics",
    "Evaluation and Metrics",
    "Data and Features",
    "Deep Learning",
    "ML Systems in Production",
]


@pytest.fixture(scope="module")
def deck() -> Compiled:
    return compile_deck(SOURCE, now=0)


def test_deck_has_at_least_250_notes_in_article_and_curriculum_subdecks(deck: Compiled) -> None:
    counts = {c.name: len(c.notes) for c in deck.deck.categories}
    assert sum(counts.values()) >= 250
    assert list(counts)[:5] == list(ARTICLE_ITEMS)
    assert set(CURRICULUM) <= set(counts)
    assert all(n > 0 for n in counts.values()), counts


@pytest.mark.parametrize("subdeck", list(ARTICLE_ITEMS))
def test_every_article_item_has_its_note_in_its_subdeck(deck: Compiled, subdeck: str) -> None:
    ids = {n.id for c in deck.deck.categories if c.name == subdeck for n in c.notes}
    assert set(ARTICLE_ITEMS[subdeck]) - ids == set()


def test_ids_unique_and_no_errors_or_warnings(deck: Compiled) -> None:
    ids = [n.id for n in deck.deck.notes()]
    assert [i for i, k in Counter(ids).items() if k > 1] == []
    assert deck.diagnostics == ()


def test_every_note_has_a_topic_tag(deck: Compiled) -> None:
    untagged = [rn.note.id for rn in deck.notes if not any(t.startswith("topic::") for t in rn.tags)]
    assert untagged == []


def test_main_answers_stay_within_80_words(deck: Compiled) -> None:
    long = {n.id: answer_words(n.answer.text) for n in deck.deck.notes() if answer_words(n.answer.text) > 80}
    assert long == {}


def test_question_prompts_are_questions(deck: Compiled) -> None:
    bad = [n.id for n in deck.deck.notes() if n.kind.value == "question" and not n.cloze and not n.prompt.endswith("?")]
    assert bad == []


def test_the_renderer_is_used_for_real(deck: Compiled) -> None:
    def has(pattern: str) -> int:
        return sum(1 for rn in deck.notes if any(re.search(pattern, f) for f in rn.fields))

    assert has(r'class="arithmatex"') >= 15
    assert has(r'<div class="highlight">') >= 5
    assert has(r"<table>") >= 1
    assert has(r'<img [^>]*src="dg-[0-9a-f]{20}\.svg"') >= 1
    assert deck.media and all(data.lstrip().startswith(b"<") for data in deck.media.values())
    assert sum(rn.note.cloze for rn in deck.notes) >= 2 and sum(rn.note.reverse for rn in deck.notes) >= 2


def test_formulas_the_issue_names_are_present(deck: Compiled) -> None:
    text = "\n".join(f for rn in deck.notes for f in rn.fields)
    for needle in (r"\sum_j |w_j|", r"\nabla", "softmax", r"P(A \mid B)", r"\log"):
        assert needle in text or needle.replace(" ", "") in text.replace(" ", ""), needle


def test_shipped_deck_builds_locked_and_imports_into_anki(tmp_path: Path, deck: Compiled) -> None:
    """The committed lock matches the sources, and real Anki takes the package whole."""
    from conftest import Anki
    from deckgen.build.pipeline import build

    source = tmp_path / "source"
    shutil.copytree(SOURCE, source)
    result = build(source, tmp_path / "build", now=2_000_000_000, locked=True)
    anki = Anki(tmp_path / "collection.anki2")
    try:
        log = anki.import_package(result.output)
        assert (log.new, log.conflicting, log.missing_notetype) == (len(deck.notes), 0, 0)
        for category in deck.deck.categories:
            found = anki.col.find_notes(f'"deck:ML Interview Prep::{category.name}"')
            assert len(found) == len(category.notes), category.name
        assert anki.col.card_count() == sum(len(rn.card_ords) for rn in deck.notes)
        check = anki.col.media.check()
        assert list(check.missing) == [] and list(check.unused) == []
    finally:
        anki.close()
