"""MathJax 3 as Anki configures it, in headless Chromium: why ``unsafe-math`` exists.

With the source check bypassed, rendered fields turn ``\\href``, ``\\style``, ``\\class``, ``\\bbox`` and
``\\mmlToken`` into javascript: links and page-covering styles (the sanitizer cannot see inside TeX);
every such formula is an ``unsafe-math`` error, and honest math typesets with no such escape.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_preview import CHROMIUM, LAUNCH_ARGS, _require_browser

from deckgen.build.pipeline import compile_deck
from deckgen.preview.page import find_mathjax
from deckgen.render.markdown import Renderer
from deckgen.sources.markup import scan

GOOD = Path(__file__).parent / "data" / "good"
# (formula, what MathJax makes of it when nothing stops it)
ATTACKS = [
    (r"$\href{jav&#97;script:alert(1)}{x}$", "javascript-link"),
    (r"\(\mmlToken{mi}[href='javascript:x']{c}\)", "javascript-link"),
    (r"\(\require{html}\href{javascript:y}{z}\)", "javascript-link"),
    (r"\(\style{position:fixed;inset:0;background:red}{x}\)", "style"),
    (r"\(\bbox[position:fixed]{a}\)", "style"),
    (r"\(\class{nightMode}{x}\)", "class"),
]
# Anki's settings (ts/lib/mathjax: noerrors, mathtools, mhchem; no $, no environments, no refs).
CONFIG = (
    "window.MathJax = {tex: {inlineMath: [['\\\\(', '\\\\)']], displayMath: [['\\\\[', '\\\\]']],"
    " processEscapes: false, processEnvironments: false, processRefs: false,"
    " packages: {'[+]': ['noerrors', 'mathtools', 'mhchem']}},"
    " startup: {pageReady: () => MathJax.startup.defaultPageReady().then("
    "() => { document.documentElement.dataset.mathjax = 'ready'; })}};"
)
ESCAPES = """(id) => {
  const found = new Set();
  for (const e of document.getElementById(id).querySelectorAll('mjx-container *')) {
    const href = e.getAttribute('href') || e.getAttribute('xlink:href') || '';
    if (/^\\s*javascript:/i.test(href)) found.add('javascript-link');
    const style = e.getAttribute('style') || '';
    if (/position|inset|background/i.test(style)) found.add('style');
    const cls = e.getAttribute('class') || '';
    if (cls && !/^mjx-|^MJX|^MathJax/.test(cls)) found.add('class');
  }
  return [...found];
}"""


@pytest.fixture(scope="module")
def typeset(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    mathjax = find_mathjax()
    if mathjax is None:
        if os.environ.get("CI"):
            pytest.fail("MathJax is missing in CI: the test extra installs django-static-mathjax")
        pytest.skip("MathJax not installed (pip install '.[preview]')")
    sync_playwright = _require_browser()
    renderer = Renderer()
    cases = [renderer.convert(formula)[0] for formula, _ in ATTACKS]
    good = compile_deck(_copy(GOOD, tmp_path_factory.mktemp("good")), 1_764_000_000)
    cases.append("".join(field for note in good.notes for field in note.fields))
    body = "".join(f'<div id="c{i}">{html}</div>' for i, html in enumerate(cases))
    page_file = tmp_path_factory.mktemp("mathjax") / "page.html"
    page_file.write_text(
        f'<html><head><script>{CONFIG}</script><script src="{mathjax.as_uri()}"></script></head>'
        f"<body>{body}</body></html>",
        encoding="utf-8",
    )
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        page = browser.new_page()
        page.goto(page_file.as_uri())
        page.wait_for_function("document.documentElement.dataset.mathjax", timeout=60_000)
        yield page
        browser.close()


def _copy(source: Path, dest: Path) -> Path:
    shutil.copytree(source, dest / "src")
    return dest / "src"


@pytest.mark.parametrize(("index", "case"), list(enumerate(ATTACKS)))
def test_math_escape_is_real_in_mathjax_and_an_unsafe_math_error(
    typeset: Any, index: int, case: tuple[str, str]
) -> None:
    formula, escape = case
    assert escape in typeset.evaluate(ESCAPES, f"c{index}")  # what a card would do without the check
    assert "unsafe-math" in {f.rule for f in scan(formula)}


def test_honest_math_typesets_without_links_styles_or_classes(typeset: Any) -> None:
    assert typeset.evaluate(ESCAPES, f"c{len(ATTACKS)}") == []
    assert typeset.evaluate(f"document.querySelectorAll('#c{len(ATTACKS)} mjx-container').length") >= 5
