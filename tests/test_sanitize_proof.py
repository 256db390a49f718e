"""``is_clean``: the regex proof that lets HTML skip nh3. It must never accept what nh3 would cut, and it
must accept what the renderer writes (or every warm build pays for nh3 again)."""

from __future__ import annotations

from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deckgen.build.pipeline import compile_deck
from deckgen.render.markdown import HTML_FIELDS, Renderer, safe_html, safe_note
from deckgen.render.sanitize import is_clean, needs_sanitizer, sanitize
from deckgen.sources.parse import parse_category

REPO = Path(__file__).parent.parent

HOSTILE = [
    "<script>alert(1)</script>",
    "<SCRIPT>alert(1)</SCRIPT>",
    '<p onclick="x()">a</p>',
    '<p onclick="x()">a</p>',
    "<img src=x onerror=alert(1)>",
    '<img src="x" onerror="alert(1)">',
    '<a href="javascript:alert(1)">a</a>',
    '<a href="JavaScript:alert(1)">a</a>',
    '<a href="javascript&colon;alert(1)">a</a>',
    '<a href="javascript&#58;alert(1)">a</a>',
    '<a href="jav&#x09;ascript:alert(1)">a</a>',
    '<a href=" javascript:alert(1)">a</a>',
    '<a href="\tjavascript:alert(1)">a</a>',
    '<a href="\x01javascript:alert(1)">a</a>',
    '<a href="java\nscript:alert(1)">a</a>',
    '<a href="vbscript:x">a</a>',
    '<a href="data:text/html,<script>x()</script>">a</a>',
    '<img src="data:image/svg+xml;base64,PHN2Zz4=">',
    "<a href='javascript:alert(1)'>a</a>",
    "<a href=javascript:alert(1)>a</a>",
    '<a title="x" href="javascript:alert(1)">a</a>',
    '<a href="https://ok" href="javascript:x">a</a>',
    "<svg onload=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    '<math><mi xlink:href="javascript:x">a</mi></math>',
    '<iframe src="https://x"></iframe>',
    "<style>body{display:none}</style>",
    "<textarea><img src=x onerror=y()></textarea>",
    "<!-- x --><p>a</p>",
    "<!--><script>x()</script>-->",
    "<![CDATA[x]]>",
    "<?xml x?>",
    "<!DOCTYPE html>",
    '<p id="typeans">a</p>',
    '<p id="TypeAns">a</p>',
    '<p id=" qa ">a</p>',
    '<div id="answer">a</div>',
    '<p id="a&#38;b">a</p>',
    '<td style="position:fixed;top:0">a</td>',
    '<td style="text-align: left; background: url(javascript:x)">a</td>',
    '<p style="color:red">a</p>',
    '<span class="x" onmouseover="y()">a</span>',
    '<span class="x"onmouseover="y()">a</span>',
    '<span/onmouseover="y()">a</span>',
    '<span class="a">b',  # unclosed: would spill into the rest of the card
    "<b>a",
    "a</b>",
    "</div><div>",
    "<b><i>a</b></i>",
    "<p/>",
    "<form><input></form>",
    "<object data=x></object>",
    '<base href="https://x">',
    "<meta http-equiv=refresh content=0>",
    "<link rel=stylesheet href=x>",
    '<a href="https://x" target="_blank">a</a>',
    '<img src="x" srcset="javascript:x 1x">',
    '<p title="<script>">a</p>',
    "<p\x00 onclick=x()>a</p>",
    "<scr<script>ipt>alert(1)</script>",
]


@pytest.mark.parametrize("fragment", HOSTILE)
def test_hostile_html_is_never_proven_clean(fragment: str) -> None:
    assert not is_clean(fragment)


class _Items(HTMLParser):
    """What a fragment asks the browser for: elements, their attribute names, URL and id values."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.items: Counter[tuple[str, ...]] = Counter()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.items[(tag,)] += 1
        first: dict[str, str | None] = {}
        for name, value in attrs:  # a repeated attribute: the browser keeps the first
            first.setdefault(name, value)
        for name, value in first.items():
            self.items[(tag, name, value or "") if name in ("href", "src", "id") else (tag, name)] += 1

    def handle_comment(self, data: str) -> None:
        self.items[("<!--",)] += 1

    def handle_decl(self, decl: str) -> None:
        self.items[("<!",)] += 1


def _items(fragment: str) -> Counter[tuple[str, ...]]:
    parser = _Items()
    parser.feed(fragment)
    parser.close()
    return parser.items


_TAGS = ["p", "span", "a", "img", "td", "div", "b", "br", "script", "style", "svg", "iframe", "SPAN", "textarea"]
_ATTRS = ["class", "title", "id", "href", "src", "style", "onclick", "onerror", "alt", "srcset", "HREF"]
_VALUES = [
    "x",
    "hl",
    "https://example.org/a",
    "mailto:a@b.c",
    "#fn:1",
    "/img.png",
    "a.png",
    "javascript:x()",
    "java&#x09;script:x",
    "&quot;",
    "typeans",
    "QA",
    "fn:2",
    "text-align: left;",
    "position:fixed",
    "a b",
    "'",
    "<",
    ">",
    "x:y",
    " javascript:x",
    "data:x",
    "",
]
_TEXT = ["a", " ", "<", ">", "&", "&lt;", "&amp;", "\\(x\\)", "{{c1::x}}", "\n", "&#60;script&#62;"]


_TABLE_PARTS = {"td", "th", "tr", "tbody", "thead", "tfoot", "caption", "col", "colgroup"}


@st.composite
def _fragments(draw: st.DrawFn) -> str:
    parts: list[str] = []
    for _ in range(draw(st.integers(0, 8))):
        kind = draw(st.sampled_from(["text", "open", "close", "pair"]))
        tag = draw(st.sampled_from(_TAGS))
        if kind == "text":
            parts.append(draw(st.sampled_from(_TEXT)))
            continue
        attrs = ""
        for _ in range(draw(st.integers(0, 2))):
            quote = draw(st.sampled_from(['"', "'", ""]))
            attrs += f" {draw(st.sampled_from(_ATTRS))}={quote}{draw(st.sampled_from(_VALUES))}{quote}"
        if kind == "open":
            parts.append(f"<{tag}{attrs}>")
        elif kind == "close":
            parts.append(f"</{tag}>")
        else:
            parts.append(f"<{tag}{attrs}>{draw(st.sampled_from(_TEXT))}</{tag}>")
    return "".join(parts)


@settings(max_examples=1500, deadline=None)
@given(_fragments())
def test_what_is_proven_clean_loses_nothing_to_the_sanitizer(fragment: str) -> None:
    """Whatever ``is_clean`` accepts, nh3 keeps every element, attribute, URL and id of (it would cut
    anything unsafe), and the fragment closes every element it opens."""
    if not is_clean(fragment):
        return
    kept = _items(sanitize(fragment))
    asked = _items(fragment)
    # A table cell outside a table is dropped by the HTML parser itself, not for safety.
    lost = Counter({item: n for item, n in (asked - kept).items() if item[0] not in _TABLE_PARTS})
    assert not lost, (fragment, lost)


def test_some_generated_fragments_are_proven_clean() -> None:
    """The property above is not vacuous: the generator's safe corners are accepted."""
    assert is_clean('<p class="x">a<a href="#fn:1" id="fnref:1">1</a></p><img src="a.png" alt="">')
    assert is_clean('<td style="text-align: left;">a</td><br>')
    assert is_clean("a &lt; b &amp; c > d")


def test_everything_the_renderer_writes_for_the_shipped_deck_is_proven_clean(tmp_path: Path) -> None:
    """Otherwise each warm build would send those fields through nh3 again (correct, but slow)."""
    compiled = compile_deck(REPO / "source", 1_764_000_000, cache_dir=None)
    values = [
        value
        for rn in compiled.notes
        for name, value in zip(rn.notetype.fields, rn.fields, strict=True)
        if name in HTML_FIELDS
    ]
    assert len(values) > 1000
    unproven = [v for v in values if not is_clean(v)]
    assert unproven == []
    assert all(is_clean(intro) for intro in compiled.intros.values())


def test_the_proof_is_linear_on_pathological_input() -> None:
    import time

    nested = "<b>" * 50_000 + "</b>" * 50_000
    for fragment in ["<a" + " " * 200_000, '<p class="' + "x" * 200_000, "<b>" * 50_000, nested, "<" * 200_000]:
        start = time.perf_counter()
        is_clean(fragment)
        assert time.perf_counter() - start < 2.0


# --- skipping nh3 in the renderer ---------------------------------------------------------------------


def test_what_nh3_is_known_to_rewrite_goes_through_the_sanitizer() -> None:
    for fragment in ["a<br />b", "<hr />", "a&nbsp;b", "a\xa0b", "&copy;", "&#123;", "a\x0cb", '<img src="a.png">']:
        assert needs_sanitizer(fragment), fragment
    # Text right inside a table is moved before it by the HTML parser (found by the generated-Markdown test).
    assert sanitize("<table>*</table>") != "<table>*</table>" and needs_sanitizer("<table>*</table>")
    for fragment in HOSTILE:
        assert needs_sanitizer(fragment), fragment
    assert not needs_sanitizer('<p>a &lt; b &amp; <em>c</em> > d</p>\n<pre><code class="language-py">x\n</code></pre>')


def _renders_of(texts: list[str]) -> list[str]:
    renderer = Renderer()
    return [renderer._md.reset().convert(text) for text in texts]


def test_the_renderer_skips_nh3_only_where_nh3_would_change_nothing() -> None:
    texts = []
    for path in sorted([*(REPO / "source").rglob("*.md"), *(REPO / "tests" / "data").rglob("*.md")]):
        category, _ = parse_category(path.read_bytes(), path)
        for note in category.notes if category is not None else ():
            texts += [note.prompt, note.answer.text, note.extra.text if note.extra else ""]
    skipped = [raw for raw in _renders_of(texts) if not needs_sanitizer(raw)]
    assert len(texts) > 2000 and len(skipped) > len(texts) * 0.8
    assert [raw for raw in skipped if sanitize(raw) != raw] == []


_MARKDOWN = st.sampled_from(
    [
        *"*_`$\\[]()!&\n :^~|#-+1.\"'=/é€😀\t",
        *("**", "``", "$$", "\\(", "\\)", "](", "<b>", "</b>", "<br>", "<div>", "</div>", "<p>", "<table>", "<tr>"),
        *("&amp;", "&#35;", "&lt;", "&gt;", "[^1]", "[^1]: n", "![i](a.png)", "[l](http://x.y?a=1&b=2)", "  \n"),
        *("word", "\n\n", "    ", "- ", "1. ", "> ", "```python\n", "```\n", "| a | b |\n|---|---|\n", ": def\n"),
        *('<span class="x">', "</span>", "<details>", "<summary>", "<a href='#x'>", "</a>", "<pre>\n", "</pre>"),
        *("<li>", "</li>", "<ul>", "</ul>", "<ol>", '<a href="y">', "<h1>", "</h1>", "<h2>", "<td>", "</td>"),
        *("<tbody>", "<thead>", "<dt>", "<dd>", "<dl>", "</dl>", "<rt>", "<ruby>", "<q>", "<blockquote>", "<col>"),
        *("<caption>", "<figure>", "</figure>", "<hr>", "<th>", "</tr>", "</table>", "<em>", "</em>", "<sup>"),
    ]
)


@settings(max_examples=800, deadline=None)
@given(st.lists(_MARKDOWN, max_size=40).map("".join))
def test_generated_markdown_skips_nh3_only_where_nh3_would_change_nothing(text: str) -> None:
    (raw,) = _renders_of([text])
    if not needs_sanitizer(raw):
        assert sanitize(raw) == raw


def test_fresh_renders_of_the_shipped_deck_pass_the_safety_net_unchanged() -> None:
    """Only cached HTML goes through the safety net: the renderer's own must be what the net would keep."""
    compiled = compile_deck(REPO / "source", 1_764_000_000, cache_dir=None)
    assert [rn.note.id for rn in compiled.notes if safe_note(rn) != rn] == []
    assert all(safe_html(html) == html for html in compiled.intros.values())
