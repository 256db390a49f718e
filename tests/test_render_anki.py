"""The tricky fixture deck imported into real Anki: exact HTML in card.question()/card.answer().

tests/data/tricky holds what breaks naive renderers: math with ``_`` and ``\\``, ``{{`` in code,
HTML special characters, emoji, right-to-left text, image names with spaces, clozes (two
deletions, nested, inside math), a reversed note and a type-in note.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import DATA, Anki, build_at

TRICKY = DATA / "tricky"
CARDS_PER_NOTE = {
    "tq-math": 1,
    "tq-braces": 1,
    "tq-html": 1,
    "tq-unicode": 1,
    "tq-images": 1,
    "tq-cloze": 2,
    "tq-reverse": 2,
    "tq-typein": 1,
    "tq-wide": 1,
    "tq-cloze-edge": 3,
    "tt-assumptions": 1,
    "tf-notes": 1,
}


@pytest.fixture(scope="module")
def anki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Anki]:
    """The tricky deck built once and imported into one real collection for the whole module."""
    root = tmp_path_factory.mktemp("tricky")
    shutil.copytree(TRICKY, root / "source")
    result = build_at(root / "source", root / "build")
    collection = Anki(root / "collection.anki2")
    log = collection.import_package(result.output)
    assert (log.new, log.conflicting, log.missing_notetype) == (len(CARDS_PER_NOTE), 0, 0)
    yield collection
    collection.close()


def _sides(anki: Anki, note_id: str) -> list[tuple[str, str]]:
    """(question, answer) per card in card order, without the <style> Anki puts in front."""
    cards = sorted(anki.cards_of(note_id), key=lambda c: c.ord)
    strip = re.compile(r"^<style>.*?</style>", re.DOTALL)
    return [(strip.sub("", c.question()), strip.sub("", c.answer())) for c in cards]


def test_every_note_has_the_expected_number_of_cards(anki: Anki) -> None:
    counts = {note_id: len(anki.cards_of(note_id)) for note_id in CARDS_PER_NOTE}
    assert counts == CARDS_PER_NOTE
    assert anki.col.card_count() == sum(CARDS_PER_NOTE.values())
    assert [c.ord for c in sorted(anki.cards_of("tq-cloze-edge"), key=lambda c: c.ord)] == [0, 1, 2]


def test_math_keeps_underscores_and_double_backslashes(anki: Anki) -> None:
    ((question, answer),) = _sides(anki, "tq-math")
    assert '<div class="dg-prompt">How are subscripts and line breaks written in math?</div>' in question
    assert r'<span class="arithmatex">\(x_i + y_{j} = a_1 &lt; b_2\)</span>' in answer
    assert r'<span class="arithmatex">\(w_{t+1} = w_t - \eta \nabla L\)</span>' in answer
    aligned = "\\begin{aligned}\nf(x) &amp;= x_1^2 \\\\\ng(x) &amp;= \\sum_{i=1}^{n} x_i\n\\end{aligned}"
    assert f'<div class="arithmatex">\\[\n{aligned}\n\\]</div>' in answer
    assert r'<div class="dg-extra"><p>Display math with <code>\\</code> line breaks: ' in answer
    assert r'<span class="arithmatex">\[ a \\ b \]</span>' in answer
    assert "<em>" not in answer  # no underscore became emphasis


def test_source_is_shown_small_under_the_answer(anki: Anki) -> None:
    ((_, answer),) = _sides(anki, "tq-math")
    assert '<div class="dg-source">The TeXbook, chapter 17</div>' in answer
    assert answer.index('class="dg-extra"') < answer.index('class="dg-source"')


def test_double_braces_in_code_stay_text_and_never_become_anki_fields(anki: Anki) -> None:
    ((_, answer),) = _sides(anki, "tq-braces")
    assert '<span class="c1"># {&#123; not a field }&#125;</span>' in answer
    assert '<span class="s2">"{&#123;Front}&#125;"</span>' in answer
    assert "<p>Inline <code>{&#123;Back}&#125;</code> and text {&#123; like this }&#125; stay literal.</p>" in answer
    assert "{{" not in answer and "}}" not in answer
    assert "style=" not in answer  # Pygments classes only, so night mode can recolour code


def test_html_special_characters_are_escaped(anki: Anki) -> None:
    ((_, answer),) = _sides(anki, "tq-html")
    assert (
        "<p><code>&lt;</code>, <code>&gt;</code> and <code>&amp;</code>: so 5 &lt; 6 &amp; 7 &gt; 3 is "
        "\"plain\" text with 'quotes', and <code>&lt;script&gt;</code> is only code.</p>"
    ) in answer
    assert "<script" not in answer


def test_emoji_and_right_to_left_text_survive(anki: Anki) -> None:
    ((question, answer),) = _sides(anki, "tq-unicode")
    assert '<div class="dg-prompt">Which emoji 🚀 and right-to-left text render?</div>' in question
    assert ("<p>Emoji ✅ and 👩\u200d💻 next to Hebrew שלום עולם and Arabic مرحبا بالعالم in one line.</p>") in answer


def test_images_with_spaces_in_their_names_use_flat_hashed_media_names(anki: Anki) -> None:
    ((_, answer),) = _sides(anki, "tq-images")
    sources = re.findall(r'<img alt="([^"]+)" src="([^"]+)">', answer)
    assert [alt for alt, _ in sources] == ["a bar", "a diagram", "a photo", "a gif"]
    assert [Path(src).suffix for _, src in sources] == [".png", ".svg", ".jpg", ".gif"]
    assert all(re.fullmatch(r"dg-[0-9a-f]{20}\.(png|svg|jpg|gif)", src) for _, src in sources)
    media_dir = Path(anki.col.media.dir())
    assert all((media_dir / src).is_file() for _, src in sources)
    check = anki.col.media.check()
    assert list(check.missing) == [] and list(check.unused) == []


def test_cloze_with_two_deletions_hides_one_per_card(anki: Anki) -> None:
    (q1, a1), (q2, a2) = _sides(anki, "tq-cloze")
    eta = r'<span class="arithmatex">\(\eta\)</span>'
    assert (
        '<span class="cloze" data-cloze="against&#x20;the&#x20;gradient" data-ordinal="1">[...]</span>'
        f' by a step of size <span class="cloze-inactive" data-ordinal="2">{eta}</span>.'
    ) in q1
    assert '<span class="cloze" data-ordinal="1">against the gradient</span>' in a1
    assert (
        '<span class="cloze-inactive" data-ordinal="1">against the gradient</span> by a step of size '
        '<span class="cloze" data-cloze="&lt;span&#x20;class&#x3D;&quot;arithmatex&quot;&gt;&#x5C;&#x28;&#x5C;eta'
        '&#x5C;&#x29;&lt;&#x2F;span&gt;" data-ordinal="2">[symbol]</span>.'
    ) in q2
    assert f'<span class="cloze" data-ordinal="2">{eta}</span>' in a2
    assert '<div class="dg-prompt">Gradient descent</div>' in q1
    for question, answer in ((q1, a1), (q2, a2)):
        assert "dg-extra" not in question
        assert (
            r'<div class="dg-extra"><p>A too large <span class="arithmatex">\(\eta\)</span> diverges.</p></div>'
            in answer
        )


def test_nested_clozes_and_clozes_inside_math(anki: Anki) -> None:
    (q1, a1), (q2, _), (q3, a3) = _sides(anki, "tq-cloze-edge")
    assert (
        '<span class="cloze" data-cloze="caf&#xE9;&#x20;☕&#x20;&amp;amp&#x3B;&#x20;&quot;tea&quot;" '
        'data-ordinal="1">[...]</span>'
    ) in q1
    assert r'<span class="arithmatex">\(L = [...]\)</span>' in q1  # no markup left inside MathJax
    assert r'<span class="arithmatex">\(L = \sum_i \ell_i\)</span>' in a1
    assert '<span class="cloze" data-ordinal="1">café ☕ &amp; "tea"</span>' in a1
    assert 'data-ordinal="2">[...]</span> and math' in q2
    assert (
        '<span class="cloze-inactive" data-ordinal="2">outer '
        '<span class="cloze" data-cloze="inner" data-ordinal="3">[...]</span> part</span>'
    ) in q3
    assert '<span class="cloze" data-ordinal="3">inner</span>' in a3


def test_reversed_note_asks_with_the_answer_and_reveals_the_prompt(anki: Anki) -> None:
    (forward_q, forward_a), (reverse_q, reverse_a) = _sides(anki, "tq-reverse")
    assert '<div class="dg-prompt">What is an epoch?</div>' in forward_q
    assert "One full pass" not in forward_q and "One full pass over the training data." in forward_a
    assert '<div class="dg-card dg-kind-Question dg-reversed">' in reverse_q
    assert '<div class="dg-answer"><p>One full pass over the training data.</p></div>' in reverse_q
    assert "What is an epoch?" not in reverse_q
    assert (
        '<hr id="answer">\n<div class="dg-card dg-kind-Question dg-back">\n'
        '<div class="dg-prompt">What is an epoch?</div>' in reverse_a
    )


def test_type_in_note_asks_for_the_exact_answer(anki: Anki) -> None:
    ((question, answer),) = _sides(anki, "tq-typein")
    assert '<div class="dg-typein">[[type:TypeIn]]</div>' in question
    assert anki.note_by_id_field("tq-typein")["TypeIn"] == "def"
    assert "<p><code>def</code>, followed by the name and the parameters.</p>" in answer
    ((plain_question, _),) = _sides(anki, "tq-math")
    assert "typein" not in plain_question  # the box only appears when the note asks for it


@pytest.mark.parametrize(
    ("note_id", "label"), [("tq-math", "Question"), ("tt-assumptions", "Tip"), ("tf-notes", "FAQ")]
)
def test_each_kind_carries_its_label_and_class(anki: Anki, note_id: str, label: str) -> None:
    ((question, _),) = _sides(anki, note_id)
    assert question.startswith(f'<div class="dg-card dg-kind-{label}">\n<div class="dg-label">{label}</div>')
