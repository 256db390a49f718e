"""The lint's shortcuts change nothing: each sped-up function equals its straightforward version.

The references below are the functions as they were before the shortcuts (skipping work when a
cheap ``in`` test shows a text cannot trigger a rule, memoising, literal-first patterns). They are
compared on every Markdown file of the test corpora and the shipped deck, cut into note-sized
pieces, on adversarial texts at the limits, and on generated markup.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deckgen.sources import check, markup
from deckgen.sources.markup import Finding
from deckgen.sources.model import Body, LintConfig, Question, SourceLocation
from deckgen.sources.parse import find_fences

ROOT = Path(__file__).parent.parent


# --- the references (the code before the shortcuts) -----------------------------------------


def ref_blank(text: str, spans: list[tuple[int, int]], fill: str = " ") -> str:
    if not spans:
        return text
    out, pos = [], 0
    for start, end in spans:
        out.append(text[pos:start])
        out.append(re.sub(r"[^\n]", fill, text[start:end]))
        pos = end
    out.append(text[pos:])
    return "".join(out)


def ref_mask_code(text: str) -> str:
    lines = text.split("\n")
    for fence in find_fences(lines):
        last = len(lines) - 1 if fence.end is None else fence.end
        for i in range(fence.start, last + 1):
            lines[i] = " " * len(lines[i])
    masked = "\n".join(lines)
    return ref_blank(masked, markup.code_spans(masked))


def ref_too_dense(text: str) -> Finding | None:
    masked = ref_mask_code(text)
    for char, limit in markup.MARKUP_LIMITS.items():
        if masked.count(char) > limit:
            offset = -1
            for _ in range(limit + 1):
                offset = masked.index(char, offset + 1)
            message = f"more than {limit} '{char}' outside code; too much markup to render"
            return Finding(offset, "markup-too-dense", message, "split the note, or put such text in a code block")
    spans = markup.code_spans(text)
    if len(spans) > markup.MAX_CODE_SPANS:
        message = f"more than {markup.MAX_CODE_SPANS} code spans; too much markup to render"
        return Finding(spans[markup.MAX_CODE_SPANS][0], "markup-too-dense", message, "use a code block")
    return None


def ref_math_spans(text: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    missing: set[str] = set()
    pos = 0
    while (m := re.compile(r"\\\\|\\\$|\\\(|\\\[|\$\$|\$").search(text, pos)) is not None:
        opener = m.group(0)
        pos = m.end()
        if opener in ("\\\\", "\\$"):
            continue
        closer = {"\\(": "\\)", "\\[": "\\]", "$$": "$$"}.get(opener, "$")
        if closer in missing:
            continue
        end = markup._find_closer(text, closer, pos)
        if end < 0:
            missing.add(closer)
            continue
        spans.append((m.start(), end + len(closer)))
        pos = end + len(closer)
    return spans


def ref_nesting(text: str) -> list[Finding]:
    for offset, depth in markup._line_depths(text):
        if depth > markup.MAX_NESTING:
            message = f"lists or quotes nested {depth} levels deep (limit {markup.MAX_NESTING})"
            return [Finding(offset, "nesting-too-deep", message, "flatten the structure: a card is read at a glance")]
    return []


def ref_math(text: str, spans: list[tuple[int, int]]) -> Iterator[Finding]:
    for start, end in spans:
        raw = text[start:end]
        formula = markup._decoded(raw)
        for m in re.finditer(r"\\([A-Za-z]+)", formula):
            name = m.group(1)
            font = name == "unicode" and formula[m.end() : m.end() + 1] == "["
            if name in markup.UNSAFE_MATH or font:
                what = "\\unicode[font]" if font else f"\\{name}"
                yield Finding(
                    start + max(raw.find(m.group(0)), 0),
                    "unsafe-math",
                    f"{what} in math would put a link, style or attribute into the card",
                    "remove it: math may only typeset formulas",
                )


def ref_link_destinations(text: str) -> Iterator[tuple[int, int, str, bool]]:
    for m in markup._MD_DEST_RE.finditer(text):
        line_start = max(text.rfind("\n", max(0, m.start() - 500), m.start()) + 1, m.start() - 500)
        opening = max(text.rfind("[", line_start, m.start()), 0)
        image = opening > 0 and text[opening - 1] == "!"
        yield opening - image, m.start(1), m.group(1), image
    for m in markup._MD_REF_RE.finditer(text):
        yield m.start(), m.start(1), m.group(1), False


def ref_url_scheme(url: str) -> str:
    m = re.match(r"^([a-z][a-z0-9+.-]*):", re.sub(r"[\x00-\x20\x7f]+", "", markup._decoded(url)).lower())
    return m.group(1) if m else ""


def ref_scan(masked: str) -> list[Finding]:
    spans = ref_math_spans(masked)
    found = list(ref_math(masked, spans))
    prose = ref_blank(masked, spans).replace("\\<", "  ")
    angled = [(m.start(1), m.end(1)) for m in markup._ANGLED_DEST_RE.finditer(prose)]
    found += ref_nesting(prose)
    found += markup._raw_html(ref_blank(prose, angled))
    for _, offset, url, image in ref_link_destinations(prose):
        found += markup._url(url, offset, image, markdown=True)
    found += markup._attribute_lists(prose)
    return found


def ref_math_problems(text: str) -> Iterator[tuple[int, str]]:
    text = text.replace("\\$", "  ")
    for opener, closer in (("\\(", "\\)"), ("\\[", "\\]")):
        depth, first = 0, -1
        for m in re.finditer(re.escape(opener) + "|" + re.escape(closer), text):
            if m.group(0) == opener:
                if depth == 0:
                    first = m.start()
                depth += 1
            elif depth == 0:
                yield m.start(), f"'{closer}' without a matching '{opener}'"
            else:
                depth -= 1
        if depth:
            yield first, f"'{opener}' is never closed with '{closer}'"
    doubles = [m.start() for m in re.finditer(r"\$\$", text)]
    if len(doubles) % 2:
        yield doubles[-1], "'$$' is never closed"
    singles = [m.start() for m in re.finditer(r"(?<!\$)\$(?!\$)", text)]
    if len(singles) % 2:
        yield singles[-1], "'$' is never closed (write \\$ for a literal dollar sign)"


def ref_answer_words(text: str) -> int:
    masked = ref_mask_code(text)
    spans = ref_math_spans(masked)
    display = [s for s in spans if masked.startswith(("$$", "\\["), s[0])]
    inline = [s for s in spans if not masked.startswith(("$$", "\\["), s[0])]
    masked = ref_blank(ref_blank(masked, display), inline, "x")
    masked = re.sub(r"<[^<>]*>", " ", masked)
    links = [(offset, offset + len(url)) for _, offset, url, _ in ref_link_destinations(masked)]
    masked = ref_blank(masked, links).replace("![", "  ").replace("](", "  ")
    return sum(1 for w in masked.split() if re.search(r"\w", w))


def ref_long_lists(text: str, limit: int) -> Iterator[tuple[int, int]]:
    lines = ref_mask_code(text).split("\n")
    offsets = list(itertools.accumulate((len(line) + 1 for line in lines), initial=0))
    counts: dict[int, list[int]] = {}
    for i, line in enumerate(lines):
        m = check.LIST_ITEM_RE.match(line)
        if m:
            indent = len(m.group(1).expandtabs(4))
            for deeper in [k for k in counts if k > indent]:
                yield from check._flush(counts.pop(deeper), limit)
            entry = counts.setdefault(indent, [offsets[i], 0])
            entry[1] += 1
        elif line.strip() and not line.startswith((" ", "\t")):
            for k in list(counts):
                yield from check._flush(counts.pop(k), limit)
    for k in list(counts):
        yield from check._flush(counts.pop(k), limit)


def ref_code_blocks(text: str) -> list[tuple[int, int]]:
    lines = text.split("\n")
    offsets = list(itertools.accumulate((len(line) + 1 for line in lines), initial=0))
    return [(offsets[f.start], f.end - f.start - 1) for f in find_fences(lines) if f.end is not None]


def ref_check_math_spans(text: str) -> Iterator[tuple[int, int]]:
    opener, start = "", 0
    for m in check._MATH_TOKEN.finditer(text):
        token = m.group(0)
        if token == "\\$":
            continue
        if not opener and token in check._MATH_CLOSER:
            opener, start = token, m.start()
        elif opener and token == check._MATH_CLOSER[opener]:
            yield start, m.end()
            opener = ""


def ref_prose_only(text: str) -> str:
    if ref_too_dense(text):
        return ref_blank(text, [(0, len(text))])
    masked = ref_mask_code(text)
    masked = ref_blank(masked, list(ref_check_math_spans(masked)))
    return ref_blank(masked, [m.span() for m in check._NOT_PROSE.finditer(masked)])


def ref_runs(text: str) -> Iterator[tuple[int, list[str]]]:
    prose = ref_prose_only(text)
    bounds = [0, *(m.end() for m in check._CHUNK_END.finditer(prose)), len(prose)]
    for start, end in itertools.pairwise(bounds):
        stack: list[tuple[int, list[tuple[int, int]]]] = [(start, [])]
        for mark in check._RUN_MARK.finditer(prose, start, end):
            i, ch = mark.start(), mark.group()
            if ch in "([" and len(stack) <= check._MAX_DEPTH:
                stack.append((i + 1, []))
            elif ch in ")]" and len(stack) > 1:
                seg_start, segments = stack.pop()
                yield from check._run(prose, [*segments, (seg_start, i)])
            elif ch in ",;" and not (ch == "," and prose[i - 1 : i].isdigit() and prose[i + 1 : i + 2].isdigit()):
                seg_start, segments = stack[-1]
                segments.append((seg_start, i))
                stack[-1] = (i + 1, segments)
        while stack:
            seg_start, segments = stack.pop()
            yield from check._run(prose, [*segments, (seg_start, end)])


def ref_two_marks(prompt: str) -> int | None:
    prose = ref_prose_only(prompt)
    marks = [i for i, ch in enumerate(prose) if ch == "?"]
    if len(marks) > 1:
        rest = prose[marks[0] + 1 :]
        return marks[0] + 1 + len(rest) - len(rest.lstrip())
    return None


# --- the comparison ---------------------------------------------------------------------------


def assert_same(text: str) -> None:
    masked = ref_mask_code(text)
    assert markup.mask_code(text) == masked
    assert markup.too_dense(text) == ref_too_dense(text)
    assert markup.math_spans(masked) == ref_math_spans(masked)
    spans = ref_math_spans(masked)
    assert list(markup._math(masked, spans)) == list(ref_math(masked, spans))
    assert list(markup.link_destinations(masked)) == list(ref_link_destinations(masked))
    for _, _, url, _ in ref_link_destinations(masked):
        assert markup.url_scheme(url) == ref_url_scheme(url)
    assert markup._scan(masked) == ref_scan(masked)
    assert list(check._math_problems(masked)) == list(ref_math_problems(masked))
    assert check.answer_words(text) == ref_answer_words(text)
    for limit in (1, 2, 5):
        assert list(check._long_lists(text, limit)) == list(ref_long_lists(text, limit))
    assert list(check._code_blocks(text)) == ref_code_blocks(text)
    assert check.prose_only(text) == ref_prose_only(text)
    assert list(check._runs(text)) == list(ref_runs(text))
    two = ref_two_marks(text)
    if two is not None:
        assert check._second_ask(text) == two
    assert lint_places(text, "bold-question") == ref_bold_questions(text)
    assert lint_places(text, "image-remote") == ref_remote_images(text)


def lint_places(text: str, rule: str) -> list[SourceLocation]:
    note = Question(id="x", prompt="Q?", answer=Body(text, 1), location=SourceLocation(Path("n.md"), 1))
    return [d.location for d in check.lint_note(note, LintConfig()) if d.rule == rule]


def ref_bold_questions(text: str) -> list[SourceLocation]:
    masked = ref_mask_code(text)
    return [Body(text, 1).location(Path("n.md"), m.start(1)) for m in check.BOLD_QUESTION_RE.finditer(masked)]


def ref_remote_images(text: str) -> list[SourceLocation]:
    links = ref_link_destinations(ref_mask_code(text))
    starts = [start for start, _, url, image in links if image and ref_url_scheme(url) in ("http", "https")]
    return [Body(text, 1).location(Path("n.md"), start) for start in starts[: markup.MAX_FINDINGS_PER_RULE]]


def _corpus_pieces() -> list[str]:
    files = sorted([*(ROOT / "tests" / "data").rglob("*.md"), *(ROOT / "source").rglob("*.md")])
    pieces = []
    for path in files:
        text = path.read_bytes().decode("utf-8", errors="replace")
        pieces += [text, *text.split("\n## ")]
    return pieces


def test_corpora_give_the_same_results_as_the_straightforward_code() -> None:
    pieces = _corpus_pieces()
    assert len(pieces) > 500
    for text in pieces:
        assert_same(text)


ADVERSARIAL = [
    "[" * 501,
    "a[" * 600,
    "`a` " * 1001,
    "`" * 2001,
    "<" * 1001,
    "```\n" + "[" * 600 + "\n```\n",
    ">" * 101 + " deep",
    ">" * 99 + " - deep",
    ">" * 100 + "- x",  # depth 101 behind a prefix of exactly 100 characters
    "\t" * 100 + "- x",
    " " * 396 + "- x",
    "\t" * 99 + "- x",
    "> " * 99 + "   - x",
    "\n".join("  " * i + "- x" for i in range(120)),
    "\r- a\n" * 7,
    "\u00a0- a\n" * 7,
    "- a\n\u2028- b\n" * 4,
    "1,000, 2,000, 3,000, 4,000, 5,000, 6,000",
    "$$a$$ $$b $$$ $a$$",
    "$\\unicode [x]$ $&bsol;href{x}$ $\\htmlClass{a}{b}$ $\\hrefx{a}$",
    "![a](HTTP://x/a.png) ![b](&#104;ttp://x) [c]: <javascript:x>",
]


@pytest.mark.parametrize("text", ADVERSARIAL)
def test_texts_at_the_limits_give_the_same_results(text: str) -> None:
    assert_same(text)


ATOMS = [
    *("$", "$$", "\\(", "\\)", "\\[", "\\]", "\\$", "\\\\", "`", "``", "```", "~~~", "\n", "\n\n", " ", "    ", "\t"),
    *("- ", "* ", "1. ", "2) ", "> ", "[", "]", "(", ")", "](", "![", "]: ", "<", ">", "<div>", "</div>", "<b>"),
    *("<a href='java&#115;cript:x'>", "<img src=http://x/a.png>", "{{c1::", "}}", "::", "{: #qa }", "<!--", "-->"),
    *(",", ";", ".", "?", ":", "|", "—", "word", "the model", "and", "which", "what is", "e.g.", "1,000", "**", "__"),
    *("\\href{x}", "\\frac{a}{b}", "&amp;", "&#92;", "http://a/b.png", "data:x", "{", "}", "é", "\r", "\u00a0"),
]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(ATOMS), max_size=80).map("".join))
def test_generated_markup_gives_the_same_results(text: str) -> None:
    assert_same(text)
