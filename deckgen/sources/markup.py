"""Read the markup inside a note's Markdown the way a card would: raw HTML tags and attributes, link
and image URLs, math commands. Reports what could run code or escape the card (``unsafe-html``,
``unsafe-math``) and what the sanitizer would silently drop (``html-unsupported``, ``data-uri``,
``html-unbalanced``), each at its offset in the text.

Everything here runs in time linear in the text: it is fed whatever an author (or an attacker) wrote.
"""

from __future__ import annotations

import functools
import html
import re
from collections.abc import Iterator
from dataclasses import dataclass

from deckgen.errors import Severity
from deckgen.render.sanitize import ALLOWED_TAGS, URL_SCHEMES, allowed_attribute, is_reserved_id
from deckgen.sources.parse import find_fences

# Deeper nesting of lists and quotes than this is an error: no card needs it, and the Markdown
# library recurses once per level (a few hundred levels exhaust Python's stack).
MAX_NESTING = 100

# Elements that run code, load other documents or take input: never in a card.
UNSAFE_TAGS = frozenset(
    {"script", "iframe", "object", "embed", "frame", "frameset", "applet", "base", "meta", "link", "form"}
    | {"input", "button", "textarea", "select", "svg", "math", "template", "noscript", "portal"}
)
# Raw HTML blocks Markdown passes through whole: left open, they swallow the rest of the answer.
BLOCK_TAGS = frozenset({"div", "table", "details", "blockquote", "pre", "ul", "ol", "dl", "figure"})
_VOID_TAGS = frozenset({"br", "hr", "img", "col", "wbr", "area", "source", "track", "input", "meta", "link", "base"})
URL_ATTRIBUTES = frozenset(
    {"href", "src", "action", "formaction", "xlink:href", "poster", "background", "cite", "data", "srcset"}
    | {"ping", "lowsrc", "dynsrc", "longdesc", "manifest", "codebase", "icon", "usemap"}
)
# MathJax 3 commands (base, or loaded on first use by its autoload and \require) that put links,
# styles, classes, ids or arbitrary attributes on the page, or load more extensions.
UNSAFE_MATH = frozenset(
    {"href", "url", "style", "class", "cssId", "data", "bbox", "enclose", "mmlToken", "require"}
    | {"htmlClass", "htmlStyle", "htmlId", "htmlData", "html"}
)
_UNSAFE_TEX = re.compile(r"\\(?:" + "|".join(sorted(UNSAFE_MATH)) + r")(?![A-Za-z])|\\unicode\s*\[")


def may_hold_unsafe_math(text: str) -> bool:
    """Whether ``text`` (HTML or Markdown, entities decoded) names a command of ``UNSAFE_MATH`` or
    ``\\unicode[font]`` anywhere, in math or not: a cheap, conservative test for HTML read back from
    the build cache (its source was checked when it was rendered; a forged entry was not)."""
    return _UNSAFE_TEX.search(_decoded(text) if "&" in text else text) is not None


_HTML_HINT = "remove it: cards run on phones and desktops; use Markdown instead"
_DROP_HINT = "cards show only plain content: use Markdown, or write '&lt;' for a literal '<'"


@dataclass(frozen=True, slots=True)
class Finding:
    offset: int
    rule: str
    message: str
    hint: str = ""
    severity: Severity = Severity.ERROR


# --- density -----------------------------------------------------------------------------------

# Python-Markdown's inline parsing is quadratic or worse in these characters (10 000 '[' take
# minutes); past these counts in one text (code excluded) deckgen refuses to render it. Cards
# never come close: the whole ML deck has at most a few dozen of each per answer.
MARKUP_LIMITS = {
    "[": 500,
    "]": 500,
    "<": 1000,
    ":": 4000,
    "`": 2000,
    "$": 2000,
    "\\": 2000,
    "*": 2000,
    "_": 2000,
    "{": 2000,
    "&": 2000,
}


MAX_CODE_SPANS = 1000  # each becomes a placeholder Markdown replaces one by one


_SMALLEST_LIMIT = min(MARKUP_LIMITS.values())


def _may_be_dense(text: str) -> bool:
    """Whether the raw counts of ``text`` exceed a limit of ``too_dense`` (a necessary condition)."""
    return text.count("`") > 2 * MAX_CODE_SPANS or any(text.count(c) > n for c, n in MARKUP_LIMITS.items())


@functools.lru_cache(maxsize=1024)  # the lint asks for the texts the renderer just read
def too_dense(text: str) -> Finding | None:
    """A finding when ``text`` holds more markup than Markdown renders in time (see ``MARKUP_LIMITS``)."""
    # Masking only removes characters and code spans need two backticks each, so a text whose raw
    # counts are all within the limits is within them once masked too: nothing to mask or locate.
    if len(text) <= _SMALLEST_LIMIT or not _may_be_dense(text):
        return None
    masked = mask_code(text)
    hint = "split the note, or put such text in a code block"
    for char, limit in MARKUP_LIMITS.items():
        if masked.count(char) > limit:
            offset = -1
            for _ in range(limit + 1):
                offset = masked.index(char, offset + 1)
            message = f"more than {limit} '{char}' outside code; too much markup to render"
            return Finding(offset, "markup-too-dense", message, hint)
    spans = code_spans(text)
    if len(spans) > MAX_CODE_SPANS:
        message = f"more than {MAX_CODE_SPANS} code spans; too much markup to render"
        return Finding(spans[MAX_CODE_SPANS][0], "markup-too-dense", message, "use a code block")
    return None


@functools.lru_cache(maxsize=1024)  # each rule masks the same text again; a note's texts stay hot
def mask_code(text: str) -> str:
    """Blank out fenced code and code spans (keeping offsets and line breaks) so rules skip code."""
    if "`" not in text and "~~~" not in text:  # no fence and no code span: nothing to blank
        return text
    masked = text
    if "```" in text or "~~~" in text:  # a fence line holds one of them
        lines = text.split("\n")
        for fence in find_fences(lines):
            last = len(lines) - 1 if fence.end is None else fence.end
            for i in range(fence.start, last + 1):
                lines[i] = " " * len(lines[i])
        masked = "\n".join(lines)
    return blank(masked, code_spans(masked))


# --- nesting -----------------------------------------------------------------------------------

_NESTING_RE = re.compile(r"((?:[ \t]*>[ \t]?)*)(?:([ \t]*)(?:[-*+]|\d+[.)])[ \t])?")


@functools.lru_cache(maxsize=1024)
def nesting_depth(text: str) -> int:
    """The deepest nesting of lists and block quotes in ``text`` (0: none)."""
    return max((depth for _, depth in _line_depths(text)), default=0)


def _line_depths(text: str) -> Iterator[tuple[int, int]]:
    pos = 0
    for line in text.split("\n"):
        m = _NESTING_RE.match(line)
        if m is not None and m.end():
            quotes = m.group(1).count(">")
            item = 0 if m.group(2) is None else len(m.group(2).expandtabs(4)) // 4 + 1
            yield pos, quotes + item
        pos += len(line) + 1


# A line's depth is at most one more than the length of its leading run of spaces, tabs and '>'
# (each '>' is one level, each tab at most four columns); no longer run, no line too deep.
_DEEP_PREFIX_RE = re.compile(f"^[ \t>]{{{MAX_NESTING}}}", re.M)


def _nesting(text: str) -> Iterator[Finding]:
    if _DEEP_PREFIX_RE.search(text) is None:
        return
    for offset, depth in _line_depths(text):
        if depth > MAX_NESTING:
            yield Finding(
                offset,
                "nesting-too-deep",
                f"lists or quotes nested {depth} levels deep (limit {MAX_NESTING})",
                "flatten the structure: a card is read at a glance",
            )
            return


# --- math ----------------------------------------------------------------------------------------

_MATH_OPEN_RE = re.compile(r"\\\\|\\\$|\\\(|\\\[|\$\$|\$")
_CLOSERS = {"\\(": "\\)", "\\[": "\\]", "$$": "$$"}


def math_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each formula: ``$..$``, ``$$..$$``, ``\\(..\\)``, ``\\[..\\]``, delimiters included.

    Linear: a closer that is missing once is missing for every later opener too.
    """
    return list(_math_spans(text))


@functools.lru_cache(maxsize=1024)  # the markup scan and the answer's word count read the same masked text
def _math_spans(text: str) -> tuple[tuple[int, int], ...]:
    if "$" not in text and "\\" not in text:  # every delimiter holds one of them
        return ()
    spans: list[tuple[int, int]] = []
    missing: set[str] = set()
    pos = 0
    while (m := _MATH_OPEN_RE.search(text, pos)) is not None:
        opener = m.group(0)
        pos = m.end()
        if opener in ("\\\\", "\\$"):
            continue
        closer = _CLOSERS.get(opener, "$")
        if closer in missing:
            continue
        end = _find_closer(text, closer, pos)
        if end < 0:
            missing.add(closer)
            continue
        spans.append((m.start(), end + len(closer)))
        pos = end + len(closer)
    return tuple(spans)


def _find_closer(text: str, closer: str, pos: int) -> int:
    while (end := text.find(closer, pos)) > 0 and text[end - 1] == "\\" and closer == "$":
        pos = end + 1  # \$ inside a formula is a literal dollar
    return end


_CONTROL_WORD_RE = re.compile(r"\\([A-Za-z]+)")


def _decoded(text: str) -> str:
    """HTML entities decoded until nothing changes (a card's browser decodes them before MathJax reads)."""
    for _ in range(4):
        decoded = html.unescape(text)
        if decoded == text:
            break
        text = decoded
    return text


def _math(text: str, spans: list[tuple[int, int]]) -> Iterator[Finding]:
    for start, end in spans:
        raw = text[start:end]
        formula = _decoded(raw) if "&" in raw else raw  # (no entity: html.unescape changes nothing)
        if _UNSAFE_TEX.search(formula) is None:  # matches wherever the loop below would find something
            continue
        for m in _CONTROL_WORD_RE.finditer(formula):
            name = m.group(1)
            font = name == "unicode" and formula[m.end() : m.end() + 1] == "["
            if name in UNSAFE_MATH or font:
                what = "\\unicode[font]" if font else f"\\{name}"
                literal = raw.find(m.group(0))
                yield Finding(
                    start + max(literal, 0),
                    "unsafe-math",
                    f"{what} in math would put a link, style or attribute into the card",
                    "remove it: math may only typeset formulas",
                )


# --- URLs ----------------------------------------------------------------------------------------

_SCHEME_RE = re.compile(r"^([a-z][a-z0-9+.-]*):")
_URL_NOISE_RE = re.compile(r"[\x00-\x20\x7f]+")


def url_scheme(url: str) -> str:
    """The scheme a browser would see in ``url`` ('' for a relative URL): entities decoded,
    control characters and spaces removed, case folded."""
    m = _SCHEME_RE.match(_URL_NOISE_RE.sub("", _decoded(url) if "&" in url else url).lower())
    return m.group(1) if m else ""


def _url(url: str, offset: int, image: bool, markdown: bool) -> Iterator[Finding]:
    scheme = url_scheme(url)
    if not scheme:
        return
    if scheme in ("javascript", "vbscript", "livescript"):
        yield Finding(offset, "unsafe-html", f"'{scheme}:' URL could run code in the card", _HTML_HINT)
    elif scheme == "data":
        what = "image" if image else "link"
        yield Finding(
            offset,
            "data-uri",
            f"{what} with a data: URI; cards drop it",
            "save the data as an image file in the source folder and reference it",
        )
    elif image and scheme in ("http", "https"):
        if not markdown:  # Markdown images get image-remote from the lint rule
            yield Finding(
                offset,
                "image-remote",
                f"image {url!r} is loaded from the web",
                "download it into the source folder and reference it relatively",
                Severity.WARNING,
            )
    elif image and (scheme == "file" or len(scheme) == 1):
        yield Finding(
            offset,
            "image-outside-source",
            f"image path {url!r} is absolute",
            "use a path relative to the Markdown file",
        )
    elif scheme not in URL_SCHEMES:
        what = "image" if image else "link"
        yield Finding(offset, "html-unsupported", f"{what} with a '{scheme}:' URL; cards drop it", _DROP_HINT)


# Markdown link and image destinations: [text](url), ![alt](url), [ref]: url. Found from the "](" that
# ends the text (so brackets nested in the text hide nothing), without scanning back more than a line.
_MD_DEST_RE = re.compile(r"\]\([ \t]*<?([^\s)>]*)")
_MD_REF_RE = re.compile(r"^[ ]{0,3}\[[^\]\n]+\]:[ \t]*<?([^\s>]+)", re.M)
_LOOK_BACK = 500


def link_destinations(text: str) -> Iterator[tuple[int, int, str, bool]]:
    """(offset of the link, offset of its url, url, is an image) of every Markdown link and image in ``text``."""
    # (each pattern holds its literal: without it there is nothing to find)
    for m in _MD_DEST_RE.finditer(text) if "](" in text else ():
        line_start = max(text.rfind("\n", max(0, m.start() - _LOOK_BACK), m.start()) + 1, m.start() - _LOOK_BACK)
        opening = max(text.rfind("[", line_start, m.start()), 0)
        image = opening > 0 and text[opening - 1] == "!"
        yield opening - image, m.start(1), m.group(1), image
    for m in _MD_REF_RE.finditer(text) if "]:" in text else ():
        yield m.start(), m.start(1), m.group(1), False


def _markdown_links(text: str) -> Iterator[Finding]:
    for _, offset, url, image in link_destinations(text):
        yield from _url(url, offset, image, markdown=True)


# --- raw HTML ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tag:
    offset: int
    name: str
    end: bool  # a closing tag
    attributes: tuple[tuple[str, str, int], ...]  # (name, decoded value, offset of the value)
    self_closing: bool = False


_TAG_NAME_RE = re.compile(r"[^\s/>]*")
_ATTR_NAME_RE = re.compile(r"[^\s/>=][^\s/>=]*")
_SPACE_RE = re.compile(r"[\s/]*")
_UNQUOTED_RE = re.compile(r"[^\s>]*")


def tags(text: str) -> Iterator[Tag]:
    """The tags of ``text`` as an HTML5 tokenizer reads them, skipping comments.

    Linear, unlike ``html.parser`` (quadratic on thousands of unclosed ``<a ``): each character is
    read once, and a construct left open at the end of the text ends the scan, as it ends the
    tokenizer (everything after it is inside it).
    """
    n = len(text)
    pos = 0
    while (lt := text.find("<", pos)) >= 0:
        nxt = text[lt + 1 : lt + 2]
        if text.startswith("<!--", lt):
            close = text.find("-->", lt + 4)
            if close < 0:
                return
            pos = close + 3
        elif nxt in ("!", "?") or (nxt == "/" and not text[lt + 2 : lt + 3].isalpha()):
            close = text.find(">", lt + 1)
            if close < 0:
                return
            pos = close + 1
        elif nxt.isalpha() or (nxt == "/" and text[lt + 2 : lt + 3].isalpha()):
            is_end = nxt == "/"
            name_match = _TAG_NAME_RE.match(text, lt + 1 + is_end)
            assert name_match is not None
            i = name_match.end()
            attributes: list[tuple[str, str, int]] = []
            while True:
                i = _SPACE_RE.match(text, i).end()  # type: ignore[union-attr]
                if i >= n:
                    return  # end of text inside a tag: the tokenizer drops it
                if text[i] == ">":
                    break
                attr = _ATTR_NAME_RE.match(text, i)
                assert attr is not None
                i = attr.end()
                j = i
                while j < n and text[j] in " \t\n\r\f":
                    j += 1
                value, value_at = "", i
                if j < n and text[j] == "=":
                    j += 1
                    while j < n and text[j] in " \t\n\r\f":
                        j += 1
                    if j < n and text[j] in "\"'":
                        close = text.find(text[j], j + 1)
                        if close < 0:
                            return
                        value, value_at, i = text[j + 1 : close], j + 1, close + 1
                    else:
                        unquoted = _UNQUOTED_RE.match(text, j)
                        assert unquoted is not None
                        value, value_at, i = unquoted.group(0), j, unquoted.end()
                attributes.append((attr.group(0).lower(), html.unescape(value), value_at))
            self_closing = text[i - 1] == "/"
            yield Tag(lt, name_match.group(0).lower(), is_end, tuple(attributes), self_closing)
            pos = i + 1
        else:
            pos = lt + 1


def _raw_html(text: str) -> Iterator[Finding]:
    open_blocks: list[Tag] = []
    for tag in tags(text):
        if ":" in tag.name or "@" in tag.name:  # <https://...> and <me@example.com> are Markdown autolinks
            if "@" not in tag.name:
                yield from _url(tag.name, tag.offset + 1, False, markdown=False)
            continue
        if tag.end:
            if tag.name in BLOCK_TAGS:
                for k in range(len(open_blocks) - 1, -1, -1):
                    if open_blocks[k].name == tag.name:
                        del open_blocks[k:]
                        break
                else:
                    yield Finding(
                        tag.offset,
                        "html-unbalanced",
                        f"</{tag.name}> closes no open <{tag.name}>",
                        f"remove it, or open the element with <{tag.name}>",
                    )
            continue
        yield from _element(tag)
        if tag.name in BLOCK_TAGS and not tag.self_closing and tag.name not in _VOID_TAGS:
            open_blocks.append(tag)
    for tag in open_blocks:
        yield Finding(
            tag.offset,
            "html-unbalanced",
            f"<{tag.name}> is never closed; the rest of the text would not be read as Markdown",
            f"close it with </{tag.name}>",
        )


def _element(tag: Tag) -> Iterator[Finding]:
    if tag.name in UNSAFE_TAGS:
        yield Finding(
            tag.offset,
            "unsafe-html",
            f"raw <{tag.name}> element could run code or load content in the card",
            _HTML_HINT,
        )
    elif tag.name not in ALLOWED_TAGS:
        yield Finding(tag.offset, "html-unsupported", f"<{tag.name}> element; cards drop it", _DROP_HINT)
    for name, value, at in tag.attributes:
        if name.startswith("on") and len(name) > 2:
            yield Finding(
                tag.offset, "unsafe-html", f"event-handler attribute '{name}=' could run code in the card", _HTML_HINT
            )
        elif name == "id" and is_reserved_id(value):
            yield Finding(
                at, "unsafe-html", f"id {value!r} is one of Anki's own elements; the card would replace it", _HTML_HINT
            )
        elif name in URL_ATTRIBUTES:
            yield from _url(value, at, tag.name == "img" and name == "src", markdown=False)
        elif tag.name in ALLOWED_TAGS and not allowed_attribute(tag.name, name):
            yield Finding(at, "html-unsupported", f"attribute '{name}' on <{tag.name}>; cards drop it", _DROP_HINT)


# --- attribute lists ({: #id .class }) -----------------------------------------------------------

_ATTR_LIST_RE = re.compile(r"\{:?[ \t]*([^{}\n]*)\}")
_ATTR_ID_RE = re.compile(r"(?:^|\s)#([^\s}]+)|(?:^|\s)id\s*=\s*[\"']?([^\s\"'}]+)")


def _attribute_lists(text: str) -> Iterator[Finding]:
    for m in _ATTR_LIST_RE.finditer(text):
        for a in _ATTR_ID_RE.finditer(m.group(1)):
            value = a.group(1) or a.group(2)
            if is_reserved_id(value):
                yield Finding(
                    m.start(),
                    "unsafe-html",
                    f"id {value!r} is one of Anki's own elements; the card would replace it",
                    "remove the attribute list",
                )
        for a in re.finditer(r"(?:^|\s)(on[a-z]+)\s*=", m.group(1)):
            yield Finding(
                m.start(),
                "unsafe-html",
                f"event-handler attribute '{a.group(1)}=' could run code in the card",
                _HTML_HINT,
            )


# --- all of it -----------------------------------------------------------------------------------


_NOT_NEWLINE_RE = re.compile(r"[^\n]")
_ANGLED_DEST_RE = re.compile(r"\]\([ \t]*(<[^<>\n]*>)")


def blank(text: str, spans: list[tuple[int, int]], fill: str = " ") -> str:
    """``text`` with each span's characters replaced by ``fill`` (line breaks kept, so offsets stay put).

    ``fill`` is a plain string (one character keeps offsets), not a substitution template.
    """
    if not spans:
        return text
    out, pos = [], 0
    for start, end in spans:
        out.append(text[pos:start])
        span = text[start:end]
        # (the substitution puts ``fill`` once per character; on one line that is ``fill`` times its length)
        out.append(_NOT_NEWLINE_RE.sub(fill, span) if "\n" in span else fill * len(span))
        pos = end
    out.append(text[pos:])
    return "".join(out)


_BACKTICKS_RE = re.compile(r"`+")


def code_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each inline code span: a run of backticks up to the next run of the same length.

    Linear: for each run, the next run of equal length is known from one backward pass.
    """
    if "`" not in text:
        return []
    runs = [(m.start(), m.end()) for m in _BACKTICKS_RE.finditer(text)]
    following: list[int | None] = [None] * len(runs)
    last: dict[int, int] = {}
    for i in range(len(runs) - 1, -1, -1):
        length = runs[i][1] - runs[i][0]
        following[i] = last.get(length)
        last[length] = i
    spans = []
    i = 0
    while i < len(runs):
        j = following[i]
        if j is None:
            i += 1
            continue
        spans.append((runs[i][0], runs[j][1]))
        i = j + 1
    return spans


# Findings of one rule in one text beyond this many are not reported (the first ones say it all), so
# a text of 30 000 bad tags costs 30 000 diagnostics' worth of locating nowhere.
MAX_FINDINGS_PER_RULE = 50


def scan(masked: str) -> list[Finding]:
    """Markup findings of a Markdown text whose code is already blanked out (offsets into it), by offset."""
    counts: dict[str, int] = {}
    kept = []
    for f in sorted(_scan(masked), key=lambda f: f.offset):
        counts[f.rule] = counts.get(f.rule, 0) + 1
        if counts[f.rule] <= MAX_FINDINGS_PER_RULE:
            kept.append(f)
    return kept


def _scan(masked: str) -> list[Finding]:
    spans = math_spans(masked)
    found = list(_math(masked, spans))
    prose = blank(masked, spans).replace("\\<", "  ")
    found += _nesting(prose)
    if "<" in prose:  # every tag starts with one
        angled = [(m.start(1), m.end(1)) for m in _ANGLED_DEST_RE.finditer(prose)]  # ![x](<a b.png>) is no tag
        found += _raw_html(blank(prose, angled))
    found += _markdown_links(prose)
    if "{" in prose:  # every attribute list starts with one
        found += _attribute_lists(prose)
    return found
