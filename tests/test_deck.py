"""Invariants of the shipped ML Interview Prep deck, so its content cannot silently rot."""

from __future__ import annotations

import re
import shutil
from collections import Counter
from pathlib import Path

import pytest

from deckgen.build.pipeline import Compiled, compile_deck
from deckgen.sources.check import CLOZE_RE, answer_words, prose_only

SOURCE = Path(__file__).parent.parent / "source"

# The original article's items keep their notes (and ids) wherever the redesign filed them.
ARTICLE_ITEMS = {
    "Behavioural": ["gen-why-ml", "gen-programming-languages", "gen-data-analysis-viz", "gen-keep-up"],
    "Fundamentals": [
        "tech-backpropagation",
        "tech-l1-vs-l2",
        "tech-classification-vs-regression",
        "tip-ml-vs-traditional-programming",
        "tip-supervised-vs-unsupervised",
        "tip-bias-variance-tradeoff",
    ],
    "Algorithms and Models": [
        "tech-decision-tree",
        "algo-knn",
        "algo-svm-max-margin",
        "algo-support-vectors",
        "algo-cnn",
        "algo-random-forest",
        "tip-interpret-decision-tree",
        "tip-kmeans-vs-hierarchical",
    ],
    "Evaluation and Metrics": ["tip-cross-validation"],
    "Data and Features": ["tip-missing-data"],
    "Interview Technique": ["tip-ml-applications", "tip-practice-methods", "faq-dont-know-answer"],
    "Logistics": ["faq-is-a-list-enough", "faq-preparation-areas", "faq-what-to-bring"],
}

# The tag taxonomy (README, "The ML Interview Prep deck"): every note carries exactly one area tag
# topic::<area>, and its other topic tags are topic::<area>::<subtopic> under that same area.
AREAS = frozenset(
    {
        "fundamentals", "algorithms", "deep-learning", "math", "statistics", "evaluation", "experimentation",
        "data", "training-data", "ml-systems", "training-at-scale", "llm", "generative", "vision", "recsys",
        "rl", "causal", "time-series", "hyperparameters", "interpretability", "fairness", "interview",
        "behavioural", "logistics",
    }
)  # fmt: skip
SUBTOPIC = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
MINIMUMS = {
    ("llm",): 35,
    ("vision",): 15,
    ("recsys",): 15,
    ("generative",): 10,
    ("rl",): 10,
    ("causal",): 10,
    ("time-series",): 10,
    ("hyperparameters",): 5,
    ("training-at-scale",): 10,
    ("interpretability", "fairness"): 8,
    ("training-data",): 10,
    ("experimentation",): 8,
}
SOFT_SKILLS = ("behavioural", "logistics")
# American spellings that must not appear in prose (code, comments and quoted titles are exempt).
AMERICAN = re.compile(
    r"\b\w*(?:regulari|optimi|normali|generali|initiali|minimi|maximi|randomi|summari|visuali|standardi"
    r"|parameteri|vectori|tokeni|utili|recogni|emphasi|prioriti)z\w*|\b\w*(?:analy|paraly)z\w*"
    r"|\b(?:[Mm]odel|[Ll]abel)(?:ing|ed)\b|\b(?:[Bb]ehavi|[Cc]ol|[Ff]av)or\w*",
)


@pytest.fixture(scope="module")
def deck() -> Compiled:
    return compile_deck(SOURCE, now=0)


def _area(tags: tuple[str, ...]) -> str:
    (area,) = [t.split("::")[1] for t in tags if t.startswith("topic::") and t.count("::") == 1]
    return area


def test_deck_has_at_least_480_notes_and_every_subdeck_has_notes(deck: Compiled) -> None:
    counts = {c.name: len(c.notes) for c in deck.deck.categories}
    assert sum(counts.values()) >= 480, counts
    assert all(n > 0 for n in counts.values()), counts


@pytest.mark.parametrize("subdeck", list(ARTICLE_ITEMS))
def test_every_article_item_has_its_note_in_its_subdeck(deck: Compiled, subdeck: str) -> None:
    ids = {n.id for c in deck.deck.categories if c.name == subdeck for n in c.notes}
    assert set(ARTICLE_ITEMS[subdeck]) - ids == set()


def test_ids_unique_and_no_errors_or_warnings(deck: Compiled) -> None:
    ids = [n.id for n in deck.deck.notes()]
    assert [i for i, k in Counter(ids).items() if k > 1] == []
    assert deck.diagnostics == ()


def test_every_note_sits_in_exactly_one_area_of_the_taxonomy(deck: Compiled) -> None:
    bad = {}
    for rn in deck.notes:
        topics = [t for t in rn.tags if t.startswith("topic::")]
        areas = [t.split("::")[1] for t in topics if t.count("::") == 1]
        subs = [t.split("::") for t in topics if t.count("::") != 1]
        if (
            len(areas) != 1
            or areas[0] not in AREAS
            or any(len(s) != 3 or s[1] != areas[0] or not SUBTOPIC.match(s[2]) for s in subs)
        ):
            bad[rn.note.id] = topics
    assert bad == {}


@pytest.mark.parametrize("areas", list(MINIMUMS), ids=["+".join(a) for a in MINIMUMS])
def test_each_new_area_has_its_minimum_number_of_notes(deck: Compiled, areas: tuple[str, ...]) -> None:
    count = sum(1 for rn in deck.notes if _area(rn.tags) in areas)
    assert count >= MINIMUMS[areas]


def test_behavioural_and_logistics_are_at_most_a_tenth_and_in_their_own_subdecks(deck: Compiled) -> None:
    soft = [rn for rn in deck.notes if _area(rn.tags) in SOFT_SKILLS]
    assert len(soft) * 10 <= len(deck.notes)
    by_deck = {c.name: {_area(rn.tags) for rn in deck.notes if rn.note in c.notes} for c in deck.deck.categories}
    mixed = {name: areas for name, areas in by_deck.items() if areas & set(SOFT_SKILLS) and len(areas) > 1}
    assert mixed == {}


def test_cloze_notes_have_at_most_four_deletions(deck: Compiled) -> None:
    many = {n.id: k for n in deck.deck.notes() if n.cloze and (k := len(set(CLOZE_RE.findall(n.answer.text)))) > 4}
    assert many == {}


def test_prose_uses_british_spelling(deck: Compiled) -> None:
    found = []
    for n in deck.deck.notes():
        for text in (n.prompt, n.answer.text, n.extra.text if n.extra else ""):
            prose = re.sub(r"\"[^\"\n]*\"|“[^”\n]*”", " ", prose_only(text))  # quoted titles keep their spelling
            found += [(n.id, m.group(0)) for m in AMERICAN.finditer(prose)]
    assert found == []


def test_main_answers_stay_within_80_words(deck: Compiled) -> None:
    long = {n.id: answer_words(n.answer.text) for n in deck.deck.notes() if answer_words(n.answer.text) > 80}
    assert long == {}


def test_question_prompts_are_questions(deck: Compiled) -> None:
    bad = [n.id for n in deck.deck.notes() if n.kind.value == "question" and not n.cloze and not n.prompt.endswith("?")]
    assert bad == []


def test_notes_of_the_new_areas_cite_a_source(deck: Compiled) -> None:
    new_areas = {a for areas in MINIMUMS for a in areas}
    unsourced = [rn.note.id for rn in deck.notes if _area(rn.tags) in new_areas and not rn.note.source.strip()]
    assert unsourced == []


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
