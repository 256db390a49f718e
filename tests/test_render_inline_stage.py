"""The renderer's inline stage hands a text only to the patterns that could match it: the HTML must be
exactly what Python-Markdown's stock inline stage writes, on every text we have and on generated ones."""

from __future__ import annotations

import sys
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from markdown.treeprocessors import InlineProcessor

from deckgen.render.converter import _PATTERN_NEEDS, _TriggeredInline
from deckgen.render.markdown import Renderer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from synth import generate  # noqa: E402

_FAST = Renderer()
_STOCK = Renderer()
_STOCK._md.treeprocessors.register(InlineProcessor(_STOCK._md), "inline", 20)


def _both(text: str) -> tuple[str, str]:
    return _FAST._md.reset().convert(text), _STOCK._md.reset().convert(text)


def test_the_fast_stage_is_the_one_registered() -> None:
    assert isinstance(_FAST._md.treeprocessors["inline"], _TriggeredInline)
    assert not isinstance(_STOCK._md.treeprocessors["inline"], _TriggeredInline)


def test_every_listed_pattern_exists() -> None:
    """A Markdown upgrade renaming a pattern would silently make it 'always tried': notice it."""
    registered = {name for name, _ in _FAST._md.inlinePatterns._priority}
    assert set(_PATTERN_NEEDS) <= registered
    assert registered - set(_PATTERN_NEEDS) == set()  # every pattern has its needs written down


def test_no_pattern_matches_a_text_without_what_it_needs() -> None:
    probe = "plain words, numbers 12 and (brackets) {braces}: x - y = z; ~tilde~ ^caret^ |pipe| ' \" # % /"
    for name, _ in _FAST._md.inlinePatterns._priority:
        pattern = _FAST._md.inlinePatterns[name]
        needs = _PATTERN_NEEDS[name]
        text = "".join(c for c in probe if c not in needs) + "\x02klzzwxh:12\x03\x02wzxhzdk:3\x03"
        assert pattern.getCompiledRegExp().search(text) is None, name


def _corpus_texts() -> list[str]:
    files = [*(ROOT / "source").rglob("*.md"), *(ROOT / "tests" / "data").rglob("*.md")]
    return [f.read_text(encoding="utf-8", errors="replace") for f in sorted(files)]


def test_same_html_on_every_corpus_file() -> None:
    texts = _corpus_texts()
    assert len(texts) > 50
    for text in texts:
        fast, stock = _both(text)
        assert fast == stock


def test_same_html_on_a_generated_deck(tmp_path: Path) -> None:
    generate(tmp_path / "deck", 400, seed=7)
    texts = [f.read_text(encoding="utf-8") for f in sorted((tmp_path / "deck").rglob("*.md"))]
    for text in texts:
        for chunk in text.split("\n## "):
            fast, stock = _both(chunk)
            assert fast == stock


_MARKUP = st.sampled_from(
    [
        *"*_`$\\[]()!<>&\n :^~|#-+1.",
        *("**", "__", "``", "$$", "\\(", "\\)", "\\[", "\\]", "](", "<b>", "</b>", "<https://x.y>", "<a@b.c>"),
        *("&amp;", "&#35;", "[^1]", "[^1]: n", "[sound:a.mp3]", "![i](a.png)", "  \n", "word", "x", "\x02", "\x03"),
        *("klzzwxh:1", "\n\n", "    ", "- ", "1. ", "> ", "```\n", "*[HTML]: h"),
    ]
)


@settings(max_examples=600, deadline=None)
@given(st.lists(_MARKUP, max_size=40).map("".join))
def test_same_html_on_generated_markup(text: str) -> None:
    fast, stock = _both(text)
    assert fast == stock
