"""Parsing: the source format, locations, and robustness against arbitrary input."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deckgen.build.pipeline import MediaStore, render_deck
from deckgen.errors import SourceError
from deckgen.sources.check import check_deck
from deckgen.sources.model import DeckConfig, Faq, Kind, Question, Tip
from deckgen.sources.parse import parse_category, parse_deck, parse_deck_strict

CONFIG = DeckConfig(name="Deck", output="deck.apkg", uuid="3c9e2f4a-7b1d-4e8c-9a2f-6d5b4c3e2f1a")
P = Path("src/cat.md")

GOOD = """---
deck: Things
kind: tip
tags: [topic::x, a::b]
order: 3
---

Intro paragraph.

## First prompt?
<!-- id: first -->
<!-- tags: extra-tag -->
<!-- source: A book -->

Answer *one*.

```python
## not a heading
```

<!-- extra -->
More.

## Second
<!-- id: second; was: old-second -->
<!-- cloze -->
<!-- ignore: list-too-long -->

A {{c1::hidden}} word.
"""


def test_front_matter_notes_options_and_locations() -> None:
    category, problems = parse_category(GOOD.encode(), P)
    assert problems == []
    assert category is not None
    assert (category.name, category.kind, category.tags, category.order) == (
        "Things",
        Kind.TIP,
        ("topic::x", "a::b"),
        3,
    )
    assert category.intro == "Intro paragraph."
    first, second = category.notes
    assert isinstance(first, Tip) and first.kind is Kind.TIP
    assert (first.id, first.prompt, first.tags, first.source) == ("first", "First prompt?", ("extra-tag",), "A book")
    assert first.location.line == 10 and first.answer.line == 15
    assert "## not a heading" in first.answer.text  # inside a fence: not a note
    assert first.extra is not None and first.extra.text == "More." and first.extra.line == 22
    assert (second.id, second.aliases, second.identity, second.cloze) == ("second", ("old-second",), "old-second", True)
    assert second.ignore == frozenset({"list-too-long"})


@pytest.mark.parametrize(("kind", "cls"), [("question", Question), ("tip", Tip), ("faq", Faq)])
def test_kind_selects_the_note_class(kind: str, cls: type) -> None:
    text = f"---\nkind: {kind}\n---\n## Q?\n<!-- id: q -->\n\nA.\n"
    category, _ = parse_category(text.encode(), P)
    assert category is not None and type(category.notes[0]) is cls


def test_deck_name_defaults_from_file_name() -> None:
    category, _ = parse_category(b"## Q?\n<!-- id: q -->\n\nA.\n", Path("src/algorithms-and-models.md"))
    assert category is not None and category.name == "Algorithms and Models"


def test_categories_are_ordered_by_order_then_file_name() -> None:
    files = {
        Path("b.md"): b"---\norder: 2\n---\n## Q?\n<!-- id: b -->\n\nA.\n",
        Path("a.md"): b"## Q?\n<!-- id: a -->\n\nA.\n",
        Path("c.md"): b"---\norder: 1\n---\n## Q?\n<!-- id: c -->\n\nA.\n",
    }
    deck = parse_deck_strict(CONFIG, Path("."), files)
    assert [c.location.path.name for c in deck.categories] == ["c.md", "b.md", "a.md"]


def test_all_errors_of_all_files_come_in_one_exception() -> None:
    files = {Path("a.md"): b"## Q?\n\nno id\n", Path("b.md"): b"## Q?\n<!-- id: BAD -->\n\nA.\n"}
    with pytest.raises(SourceError) as err:
        parse_deck_strict(CONFIG, Path("."), files)
    assert [(str(d.location), d.rule) for d in err.value.diagnostics] == [
        ("a.md:1:1", "id-missing"),
        ("b.md:2:1", "id-invalid"),
    ]


def test_note_with_error_is_left_out_but_others_parse() -> None:
    deck, problems = parse_deck(CONFIG, Path("."), {P: b"## A?\n\nno id\n\n## B?\n<!-- id: b -->\n\nB.\n"})
    assert [n.id for n in deck.notes()] == ["b"]
    assert [d.rule for d in problems] == ["id-missing"]


MARKDOWN_BITS = st.sampled_from(
    [
        "## Q?\n",
        "<!-- id: x -->\n",
        "<!-- id: y; was: x -->\n",
        "<!-- cloze -->\n",
        "<!-- extra -->\n",
        "<!-- tags: a b::c -->\n",
        "<!-- reverse -->\n",
        "---\n",
        "deck: D\n",
        "kind: tip\n",
        "tags: [a\n",
        "```python\n",
        "```\n",
        "~~~\n",
        "$x_1$",
        "$$",
        "\\(",
        "\\]",
        "{{c1::a}}",
        "}}",
        "{{",
        "- item\n",
        "    - nested\n",
        "| a | b |\n|---|---|\n",
        "![i](img.png)",
        "![i](../x.png)",
        "<script>",
        "# h1\n",
        "### h3\n",
        "\t",
        "\r\n",
        "\ufeff",
        "é",
        "🧠",
        "שלום",
        "\n",
        " ",
        "text ",
        "*",
        "_",
        "\\",
        "<",
        "&",
    ]
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.lists(MARKDOWN_BITS, max_size=40).map(lambda parts: "".join(parts).encode("utf-8")),
        st.binary(max_size=300),
        st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")),
    )
)
def test_any_input_gives_a_deck_or_source_errors_never_a_crash(data: bytes) -> None:
    try:
        deck = parse_deck_strict(CONFIG, Path("/nonexistent-root"), {Path("/nonexistent-root/cat.md"): data})
    except SourceError as exc:
        assert exc.diagnostics and all(d.location.line >= 1 and d.rule for d in exc.diagnostics)
        return
    # whatever parsed must also survive checking and rendering (images here are all missing)
    assert all(d.rule for d in check_deck(deck))
    rendered, _, problems = render_deck(deck, MediaStore(Path("/nonexistent-root")))
    assert len(rendered) == len(deck.notes())
    assert all(p.rule.startswith("image-") for p in problems)
