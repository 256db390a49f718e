"""Rendering Markdown into Anki fields: math untouched, code classes, braces, cloze, images, sanitizing."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest

from deckgen.build.pipeline import compile_deck
from deckgen.render.markdown import MediaError, Renderer, neutralise_braces, protect_cloze, restore_cloze

GOLDEN = Path(__file__).parent / "data" / "golden" / "sample_fields.json"


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer()


def _math(out: str) -> list[str]:
    return [html.unescape(m) for m in re.findall(r'class="arithmatex">(.*?)</(?:span|div)>', out, re.DOTALL)]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (r"Inline $a_1 * b_2 < c$ here", r"\(a_1 * b_2 < c\)"),
        (r"Paren \(x_i^* \\ y\) here", r"\(x_i^* \\ y\)"),
        (r"Inline display $$\sum_i x_i^2$$ here", r"\[\sum_i x_i^2\]"),
        (
            "$$\n\\begin{aligned} a &= b \\\\ c &< d_{2} \\end{aligned}\n$$",
            "\\[\n\\begin{aligned} a &= b \\\\ c &< d_{2} \\end{aligned}\n\\]",
        ),
        ("\\[ y = \\{1,2\\} \\]", "\\[ y = \\{1,2\\} \\]"),
        (r"Braces $\frac{a}{b^{2}}$ ok", r"\(\frac{a}{b^{2}}\)"),
    ],
)
def test_math_reaches_anki_byte_for_byte(renderer: Renderer, source: str, expected: str) -> None:
    out, _, _ = renderer.convert(source)
    assert _math(out) == [expected]


def test_dollar_in_code_is_not_math(renderer: Renderer) -> None:
    out, _, _ = renderer.convert("Run `echo $HOME $PATH` now.")
    assert "arithmatex" not in out and "<code>echo $HOME $PATH</code>" in out


def test_code_is_highlighted_with_classes_not_inline_styles(renderer: Renderer) -> None:
    out, _, _ = renderer.convert("```python\ndef f(x):\n    return {'a': 1}\n```")
    assert '<div class="highlight">' in out and '<span class="k">def</span>' in out
    assert "style=" not in out


def test_double_braces_never_reach_anki_as_syntax(renderer: Renderer) -> None:
    out, _, _ = renderer.convert("Text {{Front}} and `{{c1::x}}` and\n\n```\n{{FrontSide}}\n```")
    assert "{{" not in out and "}}" not in out
    text = html.unescape(re.sub(r"<[^>]+>", "", out))
    assert "{{Front}}" in text and "{{c1::x}}" in text and "{{FrontSide}}" in text


def test_cloze_markers_survive_markdown_and_braces_elsewhere_do_not() -> None:
    source = "A {{c1::**bold** $x_{1}$}} and {{c2::b::hint}} and }} stray"
    text, numbers = protect_cloze(source)
    assert numbers == {1, 2} and "{{" not in text
    out = restore_cloze(neutralise_braces(Renderer().convert(text)[0]), source)
    assert "{{c1::<strong>bold</strong> " in out and "{{c2::b::hint}}" in out
    assert "stray" in out and out.count("}}") == 2


def test_tables_footnotes_and_nested_lists(renderer: Renderer) -> None:
    out, _, _ = renderer.convert(
        "| a | b |\n|---|---|\n| 1 | 2 |\n\nNote[^1].\n\n[^1]: Foot.\n\n- x\n    - y\n        - z\n"
    )
    assert "<table>" in out and "<td>1</td>" in out
    assert 'class="footnote"' in out and "Foot." in out
    assert out.count("<ul>") == 3


def test_fenced_code_inside_a_list_item(renderer: Renderer) -> None:
    out, _, _ = renderer.convert("- step:\n\n    ```python\n    x = 1\n    ```\n")
    assert re.search(r"<li>.*<div class=\"highlight\">.*</li>", out, re.DOTALL)


def test_sanitizer_removes_scripts_and_handlers(renderer: Renderer) -> None:
    out, _, _ = renderer.convert(
        'Hi <script>alert(1)</script> <img src="a.png" onerror="x()"> [l](javascript:alert(1))'
    )
    assert "<script" not in out and "onerror" not in out and "javascript:" not in out


def test_images_are_resolved_and_errors_collected(renderer: Renderer) -> None:
    def resolve(src: str) -> str:
        if src == "ok image ü.png":
            return "dg-abc.png"
        raise MediaError(f"image not found: {src!r}")

    out, media, errors = renderer.convert("![a](ok%20image%20ü.png) ![b](missing.png)", resolve)
    assert 'src="dg-abc.png"' in out and media == ["dg-abc.png"]
    assert [src for src, _ in errors] == ["missing.png"]


def test_rendered_sample_fields_match_golden(sample: Path, request: pytest.FixtureRequest) -> None:
    compiled = compile_deck(sample, now=1)
    fields = {rn.note.id: dict(zip(rn.notetype.fields, rn.fields, strict=True)) for rn in compiled.notes}
    text = json.dumps(fields, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    if request.config.getoption("--update-golden"):
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(text, encoding="utf-8")
    assert text == GOLDEN.read_text(encoding="utf-8"), "rendered fields changed; rerun with --update-golden if intended"


def test_pipes_inside_math_in_a_table_cell_stay_in_the_formula(renderer: Renderer) -> None:
    out, _, _ = renderer.convert("| norm | formula |\n|---|---|\n| L1 | $\\sum_i |w_i|$ |\n| abs | \\(|x|\\) |\n")
    assert _math(out) == [r"\(\sum_i |w_i|\)", r"\(|x|\)"]
    assert out.count("<td>") == 4


def test_pipes_in_math_outside_tables_are_untouched(renderer: Renderer) -> None:
    out, _, _ = renderer.convert("The norm $\\lVert w \\rVert = |w|$ and $|a| + |b|$.")
    assert _math(out) == [r"\(\lVert w \rVert = |w|\)", r"\(|a| + |b|\)"]


@pytest.mark.parametrize("planted", ["DGCLOZEO1X", "DGCLOZEC", "DGPIPEX", "DGCLOZEQ1O2X", "DGPIPEQ1X"])
def test_internal_placeholders_cannot_be_produced_by_user_text(renderer: Renderer, planted: str) -> None:
    """The author's text never turns into a cloze marker or a '|' (placeholders avoid what the text holds)."""
    source = f"A {{{{c1::x}}}} and {planted} in | a | $|w|$ |\n|---|---|---|\n| {planted} | b | $|v|$ |"
    text, _ = protect_cloze(source)
    out = restore_cloze(neutralise_braces(renderer.convert(text)[0]), source)
    assert out.count(planted) == 2 and out.count("{{c") == 1 and out.count("}}") == 1
