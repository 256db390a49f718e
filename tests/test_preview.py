"""``deckgen preview``: the template renderer against real Anki, the page, and the page in a real browser.

The browser tests drive Debian's Chromium (``/usr/bin/chromium``) through Playwright, once per
module, over previews of the shipped deck (source/, copied first) and the tricky fixture deck.
They are skipped only outside CI when Chromium or Playwright is missing; under CI they fail.
Screenshots land in build/screenshots/; ``DECKGEN_UPDATE_SCREENSHOTS=1`` also copies the two
README ones to docs/screenshots/.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from conftest import DATA, REPO, SAMPLE, T0, Anki, build_at
from deckgen.anki import notetypes
from deckgen.build.pipeline import compile_deck
from deckgen.cli import main
from deckgen.preview.page import (
    MATHJAX_DEST,
    TemplateError,
    card_sides,
    cloze_filter,
    draw_type_in,
    find_mathjax,
    render_template,
    write_preview,
)

TRICKY = DATA / "tricky"
SHIPPED = REPO / "source"
CHROMIUM = Path(os.environ.get("DECKGEN_CHROMIUM", "/usr/bin/chromium"))
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = REPO / "build" / "screenshots"
README_SCREENSHOTS = REPO / "docs" / "screenshots"
DESKTOP = (1280, 800)
PHONE = (360, 740)


def _copy_source(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("deckgen.lock"))
    return dest


# --- The template renderer -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "fields", "expected"),
    [
        ("<b>{{A}}</b>", {"A": "x &amp; y"}, "<b>x &amp; y</b>"),
        ("{{#A}}[{{A}}]{{/A}}", {"A": "a"}, "[a]"),
        ("{{#A}}[{{A}}]{{/A}}", {"A": " <br> <div></div>\n"}, ""),  # Anki's "empty": blanks, <br>, <div>
        ("{{^A}}none{{/A}}", {"A": ""}, "none"),
        ("{{^A}}none{{/A}}", {"A": "<p></p>"}, ""),  # any other markup counts as content
        ("{{#A}}{{#B}}both{{/B}}{{/A}}", {"A": "1", "B": "1"}, "both"),
        ("{{ A }}", {"A": "spaces around the name"}, "spaces around the name"),
        ("{{type:A}}", {"A": "def"}, "[[type:A]]"),
    ],
)
def test_template_renders_fields_and_sections_like_anki(template: str, fields: dict[str, str], expected: str) -> None:
    assert render_template(template, fields) == expected


def test_frontside_is_the_rendered_question_on_the_answer_side() -> None:
    assert render_template("{{FrontSide}}<hr>{{B}}", {"B": "b"}, frontside="<q>") == "<q><hr>b"
    assert render_template("{{FrontSide}}", {}) == ""


@pytest.mark.parametrize(
    "template", ["{{Missing}}", "{{#Missing}}x{{/Missing}}", "{{hint:A}}", "{{#A}}open", "{{#A}}x{{/B}}", "x{{/A}}"]
)
def test_unknown_fields_filters_and_unbalanced_sections_are_template_errors(template: str) -> None:
    with pytest.raises(TemplateError):
        render_template(template, {"A": "a", "B": "b"})


# Expected outputs from Anki's own cloze tests (rslib/src/cloze.rs).
_INNER = (
    "bar&#x20;&lt;span&#x20;class&#x3D;&quot;cloze&#x2D;inactive&quot;&#x20;"
    "data&#x2D;ordinal&#x3D;&quot;2&quot;&gt;baz&lt;&#x2F;span&gt;"
)


@pytest.mark.parametrize(
    ("text", "ordinal", "question", "expected"),
    [
        (
            "foo {{c1::bar {{c2::baz}}}}",
            1,
            True,
            f'foo <span class="cloze" data-cloze="{_INNER}" data-ordinal="1">[...]</span>',
        ),
        (
            "foo {{c1::bar {{c2::baz}}}}",
            1,
            False,
            'foo <span class="cloze" data-ordinal="1">bar '
            '<span class="cloze-inactive" data-ordinal="2">baz</span></span>',
        ),
        (
            "foo {{c1::bar {{c2::baz}}::qux}}",
            2,
            True,
            'foo <span class="cloze-inactive" data-ordinal="1">bar '
            '<span class="cloze" data-cloze="baz" data-ordinal="2">[...]</span></span>',
        ),
        (
            "foo {{c1::bar {{c2::baz}}::qux}}",
            1,
            True,
            f'foo <span class="cloze" data-cloze="{_INNER}" data-ordinal="1">[qux]</span>',
        ),
        (
            "{{c1::a}} {{c1::b}}",
            1,
            False,
            '<span class="cloze" data-ordinal="1">a</span> <span class="cloze" data-ordinal="1">b</span>',
        ),
        ("{{c2::only two}}", 1, True, ""),  # no such deletion: no card
        (r"\(x = {{c1::y}}\)", 1, True, r"\(x = [...]\)"),  # no markup inside MathJax
        (r"\(x = {{c1::y}}\)", 1, False, r"\(x = y\)"),
        ("a }} b {{c1::c}}", 1, False, 'a }} b <span class="cloze" data-ordinal="1">c</span>'),
    ],
)
def test_cloze_filter_follows_ankis_cloze_rules(text: str, ordinal: int, question: bool, expected: str) -> None:
    assert cloze_filter(text, ordinal, question=question) == expected


@pytest.mark.parametrize("deck", ["tricky", "sample", "shipped"])
def test_preview_cards_are_exactly_what_anki_renders(deck: str, tmp_path: Path, anki: Anki) -> None:
    source = _copy_source({"tricky": TRICKY, "sample": SAMPLE, "shipped": SHIPPED}[deck], tmp_path / "source")
    result = build_at(source, tmp_path / "build")
    anki.import_package(result.output)
    strip = re.compile(r"^<style>.*?</style>", re.DOTALL)
    compared = 0
    for note in result.compiled.notes:
        ours = card_sides(note)
        theirs = sorted(anki.cards_of(note.note.id), key=lambda c: c.ord)
        assert [c.ord for c in ours] == [c.ord for c in theirs], note.note.id
        for mine, card in zip(ours, theirs, strict=True):
            assert mine.question == strip.sub("", card.question()), (note.note.id, card.ord)
            assert mine.answer == strip.sub("", card.answer()), (note.note.id, card.ord)
            compared += 1
    assert compared == anki.col.card_count() > 0


def test_type_in_marker_becomes_an_input_on_the_front_and_the_answer_on_the_back() -> None:
    fields = {"TypeIn": "a &lt; b"}
    front = draw_type_in('<div class="dg-typein">[[type:TypeIn]]</div>', fields, question=True)
    assert '<input type="text" id="typeans" class="pv-typeans"' in front and 'data-expected="a &lt; b"' in front
    back = draw_type_in("[[type:TypeIn]]<hr>", fields, question=False)
    assert back == '<code id="typeans" data-expected="a &lt; b">a &lt; b</code><hr>'


# --- The page -------------------------------------------------------------------------------------


def test_preview_groups_every_card_by_subdeck_and_leaves_the_source_untouched(tmp_path: Path) -> None:
    source = _copy_source(TRICKY, tmp_path / "source")
    before = {p: p.read_bytes() for p in source.rglob("*") if p.is_file()}
    result = write_preview(source, tmp_path / "out", now=T0, mathjax=None)
    assert {p: p.read_bytes() for p in source.rglob("*") if p.is_file()} == before  # no lock written
    assert (result.notes, result.cards, result.subdecks, result.media) == (12, 16, 3, 4)
    page = result.path.read_text(encoding="utf-8")
    assert [m for m in re.findall(r'data-deck="([^"]+)"', page)] == ["Questions", "Tips", "FAQ"]
    assert page.count('class="pv-note"') == 12
    assert page.count('class="pv-cardrow"') == 16
    sides = re.findall(r'<div class="card card(\d)" data-side="(front|back)">', page)
    assert len(sides) == 32 and {side for _, side in sides} == {"front", "back"}
    assert sorted(n for n, _ in sides).count("3") == 2  # the third cloze card of tq-cloze-edge: front and back
    assert page.index('id="note-tq-math"') < page.index('id="note-tt-assumptions"') < page.index('id="note-tf-notes"')
    assert notetypes.card_css() in page


def test_page_without_mathjax_says_math_is_shown_as_tex_source(tmp_path: Path) -> None:
    result = write_preview(_copy_source(TRICKY, tmp_path / "source"), tmp_path / "out", now=T0, mathjax=None)
    page = result.path.read_text(encoding="utf-8")
    assert "MathJax was not found, so math is shown as TeX source" in page
    assert "<script src=" not in page and not (tmp_path / "out" / "mathjax").exists()
    assert "dataset.mathjax = 'missing'" in page


def test_page_with_mathjax_loads_the_local_copy(tmp_path: Path) -> None:
    fake = tmp_path / "tex-svg-full.js"
    fake.write_text("/* MathJax */", encoding="utf-8")
    result = write_preview(_copy_source(TRICKY, tmp_path / "source"), tmp_path / "out", now=T0, mathjax=fake)
    page = result.path.read_text(encoding="utf-8")
    assert f'<script src="{MATHJAX_DEST}" id="MathJax-script" defer></script>' in page
    assert (tmp_path / "out" / MATHJAX_DEST).read_text(encoding="utf-8") == "/* MathJax */"
    assert "math is shown as TeX source" not in page
    assert "https://" not in page.split("<body")[0] and "http://" not in page.split("<body")[0]  # no network


def test_preview_copies_media_once_and_removes_stale_media_only(tmp_path: Path) -> None:
    source = _copy_source(TRICKY, tmp_path / "source")
    out = tmp_path / "out"
    out.mkdir()
    (out / "dg-00000000000000000000.png").write_bytes(b"old")
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    write_preview(source, out, now=T0, mathjax=None)
    media = sorted(p.name for p in out.glob("dg-*"))
    assert media == sorted(compile_deck(source, T0).media)
    assert len(media) == 4 and (out / "notes.txt").exists()
    page = (out / "index.html").read_text(encoding="utf-8")
    assert all(f'src="{name}"' in page for name in media)


def test_cli_preview_reports_counts_and_writes_the_page(tmp_path: Path) -> None:
    source = _copy_source(TRICKY, tmp_path / "source")
    out = tmp_path / "preview"
    result = CliRunner().invoke(main, ["preview", str(source), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "3 subdecks, 12 notes, 16 cards, 4 images" in result.output
    assert f"wrote {out / 'index.html'}" in result.output
    assert (out / "index.html").is_file()


def test_cli_preview_open_hands_the_page_to_the_default_browser(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[str] = []
    monkeypatch.setattr(click, "launch", lambda url, **_: opened.append(url) or 0)
    out = tmp_path / "preview"
    result = CliRunner().invoke(
        main, ["preview", str(_copy_source(TRICKY, tmp_path / "source")), "-o", str(out), "--open"]
    )
    assert result.exit_code == 0, result.output
    assert opened == [(out / "index.html").resolve().as_uri()]


def test_cli_preview_still_writes_the_page_but_fails_on_errors(tmp_path: Path) -> None:
    source = _copy_source(TRICKY, tmp_path / "source")
    (source / "faq.md").write_text(
        "---\ndeck: FAQ\nkind: faq\n---\n\n## Broken\n<!-- id: tf-broken -->\n\n![x](images/none.png)\n", "utf-8"
    )
    result = CliRunner().invoke(main, ["preview", str(source), "-o", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "image-missing" in result.output
    page = (tmp_path / "out" / "index.html").read_text(encoding="utf-8")
    assert "1 error" in page and "image not found" in page


# --- In a real browser ------------------------------------------------------------------------------

_LUMINANCE_JS = """
const parse = (c) => {
  const m = c.match(/rgba?\\(([^)]*)\\)/);
  if (!m) throw new Error('unexpected colour ' + c);
  const p = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
  return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
};
const lum = (rgb) => {
  const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
  return 0.2126 * f(rgb[0]) + 0.7152 * f(rgb[1]) + 0.0722 * f(rgb[2]);
};
const backdrop = (el) => {  // the colour behind el: its own and its ancestors' backgrounds composited
  const layers = [];
  for (let e = el; e; e = e.parentElement) {
    const c = parse(getComputedStyle(e).backgroundColor);
    if (c[3] > 0) { layers.push(c); if (c[3] >= 1) break; }
  }
  let out = [255, 255, 255];
  for (const l of layers.reverse()) out = out.map((v, i) => l[i] * l[3] + v * (1 - l[3]));
  return out;
};
const visibleCards = () => [...document.querySelectorAll('.pv-frame > .card')]
  .filter((c) => !c.closest('[hidden]'));
"""

_LAYOUT_JS = (
    "() => {"
    + _LUMINANCE_JS
    + """
  const wide = visibleCards().filter((c) => c.scrollWidth > c.clientWidth + 1)
    .map((c) => c.closest('.pv-note').id + ' ' + c.dataset.side + ' ' + c.scrollWidth + '>' + c.clientWidth);
  return {scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth,
          cards: visibleCards().length, wide: wide,
          card: document.querySelector('.pv-frame > .card').getBoundingClientRect().width};
}"""
)

_COLOURS_JS = (
    "() => {"
    + _LUMINANCE_JS
    + """
  const cards = visibleCards();
  const code = cards.flatMap((c) => [...c.querySelectorAll('.highlight, :not(pre) > code')]);
  const lums = (els) => els.map((e) => lum(backdrop(e)));
  const failures = [];
  let checked = 0;
  for (const card of cards) {
    const walker = document.createTreeWalker(card, NodeFilter.SHOW_TEXT);
    const seen = new Set();
    while (walker.nextNode()) {
      const el = walker.currentNode.parentElement;
      if (!walker.currentNode.nodeValue.trim() || seen.has(el) || el.closest('mjx-container')) continue;
      seen.add(el);
      const bg = backdrop(el);
      const fg = parse(getComputedStyle(el).color);
      const rgb = fg.slice(0, 3).map((v, i) => v * fg[3] + bg[i] * (1 - fg[3]));
      const [hi, lo] = [lum(rgb), lum(bg)].sort((a, b) => b - a);
      const ratio = (hi + 0.05) / (lo + 0.05);
      checked += 1;
      if (ratio < 4.5) failures.push(el.className + ' "' + walker.currentNode.nodeValue.trim().slice(0, 30) + '" '
                                     + ratio.toFixed(2));
    }
  }
  return {cardLum: Math.max(...lums(cards)), cardLumMin: Math.min(...lums(cards)),
          codeLum: code.length ? Math.max(...lums(code)) : null, codeCount: code.length,
          codeLumMin: code.length ? Math.min(...lums(code)) : null,
          checked: checked, failures: failures.slice(0, 10), failureCount: failures.length};
}"""
)

_IMAGES_JS = """() => [...document.querySelectorAll('.card img')].map((img) => ({
  src: img.getAttribute('src'), complete: img.complete, width: img.naturalWidth}))"""


@dataclass
class LoadedPage:
    name: str
    page: Any  # playwright.sync_api.Page
    errors: list[str] = field(default_factory=list)
    images: int = 0
    readme_query: str = ""


def _require_browser() -> Any:
    reason = ""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        reason = "the playwright package is not installed (pip install '.[test]')"
    else:
        if not CHROMIUM.is_file():
            reason = f"{CHROMIUM} not found (apt-get install chromium)"
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"browser tests cannot run in CI: {reason}")
        pytest.skip(reason)
    return sync_playwright


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_playwright = _require_browser()
    with sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield instance
        instance.close()


def _readme_query(source: Path) -> str:
    """A note of the deck with code and math, for the README screenshots."""
    compiled = compile_deck(source, T0)
    for note in compiled.notes:
        body = " ".join(note.fields)
        if 'class="highlight"' in body and "arithmatex" in body:
            return note.note.id
    return compiled.notes[0].note.id


@pytest.fixture(scope="module")
def pages(browser: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, LoadedPage]]:
    """Previews of the shipped and the tricky deck, each loaded once with math typeset."""
    mathjax = find_mathjax()
    loaded: dict[str, LoadedPage] = {}
    for name, src in (("shipped", SHIPPED), ("tricky", TRICKY)):
        root = tmp_path_factory.mktemp(name)
        source = _copy_source(src, root / "source")
        result = write_preview(source, root / "preview", now=T0, mathjax=mathjax)
        page = browser.new_page(viewport={"width": DESKTOP[0], "height": DESKTOP[1]})
        state = LoadedPage(name, page, readme_query=_readme_query(source))
        page.on("console", lambda msg, s=state: s.errors.append(msg.text) if msg.type == "error" else None)
        page.on("pageerror", lambda exc, s=state: s.errors.append(f"uncaught: {exc}"))
        page.on("requestfailed", lambda req, s=state: s.errors.append(f"failed request: {req.url}"))
        page.goto(result.path.as_uri())
        page.wait_for_function("document.documentElement.dataset.mathjax", timeout=60_000)
        page.wait_for_function("[...document.images].every((i) => i.complete)", timeout=30_000)
        state.images = result.path.read_text(encoding="utf-8").count("<img ")
        loaded[name] = state
    yield loaded
    for state in loaded.values():
        state.page.close()


def _set_mode(state: LoadedPage, size: tuple[int, int], night: bool, phone: bool, query: str = "") -> None:
    """Switch modes through the page's own controls, as a person would."""
    page = state.page
    page.set_viewport_size({"width": size[0], "height": size[1]})
    page.set_checked("#pv-night", night)
    page.set_checked("#pv-phone", phone)
    page.fill("#pv-search", query)
    page.evaluate("window.scrollTo(0, 0)")


def _shot(state: LoadedPage, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{state.name}-{name}.png"
    state.page.screenshot(path=str(path))
    return path


MODES = [
    pytest.param(DESKTOP, False, id="desktop-light"),
    pytest.param(DESKTOP, True, id="desktop-night"),
    pytest.param(PHONE, False, id="phone-light"),
    pytest.param(PHONE, True, id="phone-night"),
]


@pytest.mark.parametrize("deck", ["shipped", "tricky"])
@pytest.mark.parametrize(("size", "night"), MODES)
def test_page_never_scrolls_sideways(
    pages: dict[str, LoadedPage], deck: str, size: tuple[int, int], night: bool
) -> None:
    state = pages[deck]
    phone = size == PHONE
    _set_mode(state, size, night=night, phone=phone)
    layout = state.page.evaluate(_LAYOUT_JS)
    _shot(state, f"{size[0]}x{size[1]}-{'night' if night else 'light'}")
    assert layout["scrollWidth"] <= layout["innerWidth"] == size[0]
    assert layout["wide"] == []  # no card is wider than its frame: code and tables scroll inside
    assert layout["cards"] > 0
    if phone:
        assert layout["card"] <= 360
    assert state.errors == []


@pytest.mark.parametrize("deck", ["shipped", "tricky"])
def test_phone_toggle_draws_cards_360_px_wide_on_a_desktop(pages: dict[str, LoadedPage], deck: str) -> None:
    state = pages[deck]
    _set_mode(state, DESKTOP, night=False, phone=True)
    width = "document.querySelector('.pv-frame > .card').getBoundingClientRect().width"
    assert state.page.evaluate(width) == 360
    _set_mode(state, DESKTOP, night=False, phone=False)
    assert state.page.evaluate(width) > 500


@pytest.mark.parametrize("deck", ["shipped", "tricky"])
@pytest.mark.parametrize("night", [False, True], ids=["light", "night"])
def test_cards_and_code_have_the_right_backgrounds_and_aa_contrast(
    pages: dict[str, LoadedPage], deck: str, night: bool
) -> None:
    state = pages[deck]
    _set_mode(state, DESKTOP, night=night, phone=False)
    colours = state.page.evaluate(_COLOURS_JS)
    assert colours["checked"] > 50 and colours["codeCount"] > 0
    assert colours["failures"] == [] and colours["failureCount"] == 0  # WCAG AA: >= 4.5:1 for every text run
    if night:
        assert colours["cardLum"] < 0.05 and colours["codeLum"] < 0.05  # dark card, dark code, never white boxes
        classes = state.page.evaluate("document.querySelector('.pv-frame > .card').className")
        assert classes.split() == ["card", "card1", "nightMode", "night_mode"]  # Anki's body classes
    else:
        assert colours["cardLumMin"] > 0.9 and colours["codeLumMin"] > 0.8
    assert state.errors == []


@pytest.mark.parametrize("deck", ["shipped", "tricky"])
def test_every_image_loads(pages: dict[str, LoadedPage], deck: str) -> None:
    state = pages[deck]
    images = state.page.evaluate(_IMAGES_JS)
    assert len(images) == state.images > 0
    assert [img for img in images if not (img["complete"] and img["width"] > 0)] == []
    assert state.errors == []


@pytest.mark.parametrize("deck", ["shipped", "tricky"])
def test_math_is_typeset_by_the_local_mathjax(pages: dict[str, LoadedPage], deck: str) -> None:
    state = pages[deck]
    if find_mathjax() is None:
        if os.environ.get("CI"):
            pytest.fail("MathJax is missing in CI: the test extra installs django-static-mathjax")
        pytest.skip("MathJax not installed (pip install '.[preview]')")
    page = state.page
    assert page.evaluate("document.documentElement.dataset.mathjax") == "ready"
    assert page.locator(".card mjx-container").count() > 10
    leftover = page.evaluate(
        "[...document.querySelectorAll('.card .arithmatex')].filter((e) => /\\\\[(\\[]/.test(e.textContent)).length"
    )
    assert leftover == 0  # no TeX source left on a card
    assert state.errors == []


def test_search_filters_notes_and_says_how_many_match(pages: dict[str, LoadedPage]) -> None:
    state = pages["tricky"]
    page = state.page
    _set_mode(state, DESKTOP, night=False, phone=False, query="Step  GRADIENT")  # every word, any case
    visible = page.evaluate("[...document.querySelectorAll('.pv-note')].filter((n) => !n.hidden).map((n) => n.id)")
    assert visible == ["note-tq-cloze"]
    assert page.inner_text("#pv-status") == "1 of 12 notes"
    assert page.evaluate("[...document.querySelectorAll('.pv-deck')].map((d) => d.hidden)") == [False, True, True]
    page.fill("#pv-search", "no such words anywhere")
    assert page.is_visible("#pv-empty")
    page.fill("#pv-search", "")
    assert page.evaluate("document.querySelectorAll('.pv-note:not([hidden])').length") == 12
    assert state.errors == []


def test_typing_an_answer_shows_the_comparison_on_the_back(pages: dict[str, LoadedPage]) -> None:
    state = pages["tricky"]
    page = state.page
    _set_mode(state, DESKTOP, night=False, phone=False, query="tq-typein")
    back = page.locator("#note-tq-typein [data-side=back] code#typeans")
    assert back.inner_text() == "def"
    page.fill("#note-tq-typein input.pv-typeans", "def")
    assert back.locator(".typeGood").inner_text() == "def"
    page.fill("#note-tq-typein input.pv-typeans", "lambda")
    assert back.locator(".typeBad").inner_text() == "lambda" and back.locator(".typeMissed").inner_text() == "def"
    page.fill("#note-tq-typein input.pv-typeans", "")
    assert state.errors == []


def test_readme_screenshots_light_desktop_and_night_phone(pages: dict[str, LoadedPage]) -> None:
    state = pages["shipped"]
    _set_mode(state, DESKTOP, night=False, phone=False, query=state.readme_query)
    light = _shot(state, "readme-light-desktop")
    _set_mode(state, PHONE, night=True, phone=True, query=state.readme_query)
    state.page.evaluate(  # the back of the card right under the sticky bar
        "window.scrollTo(0, document.querySelector('.pv-note:not([hidden]) [data-side=back]')"
        ".getBoundingClientRect().top - document.querySelector('.pv-bar').offsetHeight - 28)"
    )
    night = _shot(state, "readme-night-phone")
    _set_mode(state, DESKTOP, night=False, phone=False)
    for path, width in ((light, DESKTOP[0]), (night, PHONE[0])):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert int.from_bytes(path.read_bytes()[16:20], "big") == width
    if os.environ.get("DECKGEN_UPDATE_SCREENSHOTS") == "1":
        README_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(light, README_SCREENSHOTS / "preview-light-desktop.png")
        shutil.copyfile(night, README_SCREENSHOTS / "preview-night-phone.png")
    assert state.errors == []


def test_notes_with_errors_are_left_out_consistently_and_no_element_id_repeats(tmp_path: Path) -> None:
    source = _copy_source(TRICKY, tmp_path / "source")
    (source / "faq.md").write_text(
        "---\ndeck: FAQ\nkind: faq\n---\n\n"
        "## Math broken?\n<!-- id: tf-math -->\n\nAn open $x + y here.\n\n"  # an error found after parsing
        "## Twice?\n<!-- id: tf-twice -->\n\nFirst.\n\n"
        "## Twice again?\n<!-- id: tf-twice -->\n\nSecond, same id.\n\n"  # id-duplicate
        "## Fine?\n<!-- id: tf-fine -->\n\nFine.\n",
        "utf-8",
    )
    result = CliRunner().invoke(main, ["preview", str(source), "-o", str(tmp_path / "out")])
    assert result.exit_code == 1 and "[math-unbalanced]" in result.output and "[id-duplicate]" in result.output
    page = (tmp_path / "out" / "index.html").read_text(encoding="utf-8")
    ids = re.findall(r'\sid="((?:note|deck)-[^"]+)"', page)  # the page's own ids (card templates repeat Anki's)
    assert len(ids) == len(set(ids)) > 3, sorted(i for i in ids if ids.count(i) > 1)
    assert 'id="note-tf-fine"' in page and 'id="note-tf-math"' not in page
    assert page.count('id="note-tf-twice"') == 1 and "Second, same id." not in page
    opened = r'<details class="pv-problems[^"]*" open><summary>2 errors, \d+ warnings? \(notes with errors'
    assert re.search(opened, page)
    shown = re.search(r'<span class="pv-summary">(\d+) notes', page)
    assert shown is not None and f"{shown.group(1)} notes" in result.output  # the CLI counts the same notes


def test_problem_list_starts_folded_with_warnings_only(tmp_path: Path) -> None:
    source = _copy_source(TRICKY, tmp_path / "source")
    (source / "faq.md").write_text("---\ndeck: FAQ\n---\n\n## A statement\n<!-- id: tf-st -->\n\nText.\n", "utf-8")
    assert CliRunner().invoke(main, ["preview", str(source), "-o", str(tmp_path / "out")]).exit_code == 0
    page = (tmp_path / "out" / "index.html").read_text(encoding="utf-8")
    assert '<details class="pv-problems tex2jax_ignore"><summary>0 errors, 1 warning</summary>' in page
