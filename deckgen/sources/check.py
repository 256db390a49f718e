"""Validate and lint parsed notes: source-level errors (math, unsafe HTML, cloze) and spaced-repetition warnings.

Each rule has an id; warnings can be silenced per note with ``<!-- ignore: rule-id ... -->`` or
deck-wide with ``[lint] disable = [...]`` in ``deckgen.toml``. Errors cannot be silenced.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from deckgen.errors import Diagnostic, Severity
from deckgen.sources import markup
from deckgen.sources.duplicates import duplicate_pairs
from deckgen.sources.model import Body, Deck, Kind, LintConfig, Note, SourceLocation
from deckgen.sources.parse import find_fences

# The answer ``deckgen new`` writes into a skeleton; the ``placeholder`` rule catches it left in place.
PLACEHOLDER = "Write the answer here."
LIST_ITEM_RE = re.compile(r"^(\s*)(?:[-*+]|\d+[.)])\s+\S")
CLOZE_RE = re.compile(r"\{\{c(\d+)::")
# A paragraph that is only a bold question: how public Q&A lists mark their questions.
BOLD_QUESTION_RE = re.compile(r"(?:^|\n[ \t]*\n)[ \t]*((\*\*|__)[^\n*_]+\?[ \t]*\2)[ \t]*(?=\n[ \t]*\n|\n?$)")


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    severity: Severity
    summary: str


_E, _W = Severity.ERROR, Severity.WARNING

# Every rule id deckgen reports, from every stage; README's rule table and the tests rely on it.
RULES: dict[str, Rule] = {
    r.id: r
    for r in (
        # reading and configuration
        Rule("source-missing", _E, "the source folder does not exist"),
        Rule("config-missing", _E, "deckgen.toml is missing from the source folder"),
        Rule("config-invalid", _E, "deckgen.toml is not valid TOML or a value has the wrong type"),
        Rule("config-unknown-key", _E, "deckgen.toml has a key deckgen does not know (with a 'did you mean')"),
        Rule("uuid-missing", _E, "deckgen.toml has no deck uuid (the hint prints a fresh line to paste)"),
        Rule("unreadable", _E, "a category file cannot be read"),
        Rule("lock-foreign", _E, "deckgen.lock belongs to another deck (another uuid): a copied folder's lock"),
        Rule("lock-invalid", _E, "deckgen.lock cannot be read or is damaged (wrong types, ranges, not JSON or UTF-8)"),
        Rule("encoding", _E, "a file (or its name) is not valid UTF-8"),
        Rule("file-outside-source", _E, "a category file that is a symlink leaving the source folder"),
        Rule("binary-content", _E, "a file contains NUL bytes"),
        # front matter
        Rule("front-matter-unclosed", _E, "front matter opened with '---' is never closed"),
        Rule("front-matter-invalid", _E, "front matter is not valid YAML, or a value has the wrong type"),
        Rule("front-matter-unknown-key", _E, "front matter has an unknown key (with a 'did you mean')"),
        Rule("kind-unknown", _E, "kind is not question, tip or faq"),
        Rule("tag-invalid", _E, "a tag contains spaces, quotes, '<', '>' or control characters"),
        Rule("deck-duplicate", _E, "two files define the same subdeck"),
        # notes
        Rule("heading-level", _E, "a '#', '###' … heading where only '## ' starts a note (it would not be a card)"),
        Rule(
            "heading-malformed", _E, "'##What', '##' + no-break space, an indented heading: would vanish into an answer"
        ),
        Rule("comment-unclosed", _E, "an HTML comment never closed (it would hide the notes after it)"),
        Rule("extra-with-text", _E, "<!-- extra: text --> is a comment: its text would not be on the card"),
        Rule("prompt-empty", _E, "a '## ' heading without prompt text"),
        Rule("id-missing", _E, "a note without <!-- id: ... --> right after its heading"),
        Rule("id-invalid", _E, "an id with characters other than lowercase letters, digits, '-' and '_'"),
        Rule("id-duplicate", _E, "an id (or rename alias) used twice in the deck; both places are named"),
        Rule("id-retired", _E, "an id the lock retired (a removed note, a former id) reused without '; restore'"),
        Rule("id-rename-conflict", _E, "an id and its was: ids (or guid) name different notes of the lock"),
        Rule("guid-changed", _E, "a <!-- guid: --> differing from the GUID the lock records for the note"),
        Rule("guid-duplicate", _E, "two notes with the same <!-- guid: -->"),
        Rule("notetype-changed", _E, "a note changed between basic and cloze: Anki's importer cannot apply that"),
        Rule("deck-moved", _W, "notes moved to another subdeck: Anki leaves their cards in the old one"),
        Rule("cards-removed", _W, "a note lost a card (reverse, a cloze number): Anki keeps it, blank"),
        Rule("note-option-unknown", _E, "an unknown <!-- option: ... --> under a heading (with a 'did you mean')"),
        Rule("note-option-duplicate", _E, "the same note option given twice"),
        Rule("note-option-invalid", _E, "a note option with a bad value (e.g. reverse: maybe, an unknown rule id)"),
        Rule("answer-empty", _E, "a note without answer text"),
        Rule("fence-unclosed", _E, "a code fence that is never closed (it would swallow the notes after it)"),
        Rule("math-unbalanced", _E, "a math delimiter ($, $$, \\( \\), \\[ \\]) is not closed"),
        Rule("unsafe-math", _E, "math commands that make links, styles or attributes (\\href, \\style, \\class …)"),
        Rule("html-unsupported", _E, "an HTML element, attribute or URL scheme that cards drop (<audio>, <font> …)"),
        Rule("html-unbalanced", _E, "a block HTML element (<div>, <table> …) left open or closed twice"),
        Rule("data-uri", _E, "a data: URI in an image or link (cards drop it)"),
        Rule("markup-too-dense", _E, "a text with more markup than can be rendered in time (e.g. over 500 '[')"),
        Rule("cloze-not-enabled", _E, "{{c1::...}} in a note that is not marked <!-- cloze -->"),
        Rule("cloze-without-deletions", _E, "a <!-- cloze --> note without any {{c1::...}} deletion"),
        Rule("cloze-misplaced", _E, "cloze deletions outside a cloze note's answer, or numbered c0"),
        Rule("cloze-number", _E, "a cloze number above c500 (Anki refuses a package with one above c65536)"),
        Rule("cloze-unclosed", _E, "a {{c1:: deletion never closed with }}"),
        Rule("cloze-malformed", _E, "{{c1:x}}, {{C1::…}}, an empty deletion, or '}}' inside math ending a deletion"),
        # images
        Rule("image-missing", _E, "an image or sound file that does not exist"),
        Rule(
            "image-outside-source", _E, "an image or sound path leaving the source folder (../, absolute, symlink out)"
        ),
        Rule("image-path", _E, "an image path written with backslashes"),
        Rule(
            "image-type",
            _E,
            "an image that is not PNG, JPEG, GIF, SVG or WebP; a sound that is not MP3, OGG, WAV, M4A, FLAC or Opus",
        ),
        # spaced-repetition lint (warnings)
        Rule("answer-too-long", _W, "main answer longer than the word limit (default 80)"),
        Rule("prompt-not-question", _W, "a question's prompt does not end with '?'"),
        Rule("list-too-long", _W, "a list with more items than the limit (default 5)"),
        Rule("prompt-duplicate", _W, "two notes with identical or near-identical prompts"),
        Rule("code-too-long", _W, "a code block longer than the limit (default 30 lines)"),
        Rule("category-empty", _W, "a category file without any note"),
        Rule("placeholder", _W, "an answer still holding the skeleton text 'deckgen new' wrote"),
        Rule("image-remote", _W, "an image loaded from the web: missing offline and on phones"),
        Rule("bold-question", _W, "a paragraph that is only a bold question: probably a note without a heading"),
        # card design (one idea per card)
        Rule("cloze-too-many", _W, "a cloze note with more deletion numbers than the limit (default 4)"),
        Rule("enumeration-in-prose", _W, "an answer sentence listing more comma-separated items than the list limit"),
        Rule("prompt-two-questions", _W, "a prompt asking two questions ('?' twice, or '…, and why/how/what …?')"),
        Rule("reverse-gives-away", _W, "a reversed note whose answer contains the prompt's key term"),
        # deckgen import (about the files being imported, not the sources)
        Rule("import-nothing-found", _W, "an imported file in which no question or note was found"),
        Rule("import-no-answer", _W, "an imported question without an answer (left out, named)"),
        Rule("import-text-skipped", _W, "imported text after a section's questions that belongs to none (a footer)"),
        Rule("import-media-missing", _W, "an imported Anki note references a media file the package lacks"),
    )
}


_WORD_CHAR = re.compile(r"\w")


_mask_code = markup.mask_code


def _parts(note: Note) -> Iterator[tuple[str, Body]]:
    yield "prompt", Body(note.prompt, note.location.line)
    yield "answer", note.answer
    if note.extra is not None:
        yield "extra", note.extra


def math_problems(text: str) -> list[tuple[int, str]]:
    """Offsets (and messages) of the math delimiters of Markdown ``text`` that are never closed; code is skipped."""
    return list(_math_problems(_mask_code(text)))


_BRACKET_MATH = (("\\(", "\\)", re.compile(r"\\\(|\\\)")), ("\\[", "\\]", re.compile(r"\\\[|\\\]")))
_DOUBLE_DOLLAR_RE = re.compile(r"\$\$")
# A '$' neither preceded nor followed by another; the '$' comes first so the search skips to each one.
_SINGLE_DOLLAR_RE = re.compile(r"\$(?<!\$\$)(?!\$)")


def _math_problems(text: str) -> Iterator[tuple[int, str]]:
    """Offsets of unbalanced math delimiters in code-masked text."""
    text = text.replace("\\$", "  ")
    for opener, closer, delimiters in _BRACKET_MATH:
        if opener not in text and closer not in text:
            continue
        depth, first = 0, -1
        for m in delimiters.finditer(text):
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
    if "$" not in text:
        return
    doubles = [m.start() for m in _DOUBLE_DOLLAR_RE.finditer(text)]
    if len(doubles) % 2:
        yield doubles[-1], "'$$' is never closed"
    singles = [m.start() for m in _SINGLE_DOLLAR_RE.finditer(text)]
    if len(singles) % 2:
        yield singles[-1], "'$' is never closed (write \\$ for a literal dollar sign)"


def source_errors(note: Note) -> list[Diagnostic]:
    """Errors found in a note's Markdown: unbalanced math, unsafe HTML, misplaced cloze deletions."""
    path = note.location.path
    found: list[Diagnostic] = []
    for part, body in _parts(note):
        masked = _mask_code(body.text)
        dense = markup.too_dense(body.text)
        if dense is not None:  # one finding; locating thousands of others would take quadratic time
            where = body.location(path, dense.offset)
            found.append(Diagnostic(where, dense.rule, f"{dense.message} in the {part}", dense.hint))
            continue
        for offset, message in _math_problems(masked):
            found.append(
                Diagnostic(
                    body.location(path, offset),
                    "math-unbalanced",
                    f"{message} in the {part}",
                    "close the formula, or escape a literal dollar as \\$",
                )
            )
        for f in markup.scan(masked):
            message = f"{f.message} in the {part}"
            found.append(Diagnostic(body.location(path, f.offset), f.rule, message, f.hint, f.severity))
        if note.cloze:
            for m in CLOZE_RE.finditer(masked):
                if part != "answer":
                    found.append(
                        Diagnostic(
                            body.location(path, m.start()),
                            "cloze-misplaced",
                            f"cloze deletion in the {part}; only the answer text becomes cloze cards",
                            "move the deletion into the answer",
                        )
                    )
                elif int(m.group(1)) == 0:
                    found.append(
                        Diagnostic(
                            body.location(path, m.start()),
                            "cloze-misplaced",
                            "cloze numbers start at c1",
                            "renumber the deletion as {{c1::...}}",
                        )
                    )
            if part == "answer":
                found += [
                    Diagnostic(body.location(path, offset), rule, message, hint)
                    for offset, rule, message, hint in cloze_problems(masked)
                ]
    return found


# Real Anki (26.x) imports cloze numbers up to c65536 (card ords are 16-bit); one deletion above makes it
# refuse the whole package ("IntegralValueOutOfRange"). deckgen's limit is far below, and documented.
CLOZE_MAX = 500
_CLOZE_TOKEN_RE = re.compile(r"\{\{c(\d+)::|\}\}|\{\{[ \t]*[cC][ \t]*-?\d*[ \t]*::?")


def cloze_problems(text: str) -> Iterator[tuple[int, str, str, str]]:
    """(offset, rule, message, hint) for each broken deletion of a cloze note's code-masked answer:
    above ``CLOZE_MAX``, malformed, empty, never closed, or closed by a ``}}`` that belongs to math."""
    open_at: list[re.Match[str]] = []
    for m in _CLOZE_TOKEN_RE.finditer(text):
        if m.group(1) is not None:
            if int(m.group(1)) > CLOZE_MAX:
                yield (
                    m.start(),
                    "cloze-number",
                    f"cloze number c{int(m.group(1)) if len(m.group(1)) < 12 else m.group(1)[:12] + '...'} "
                    f"is above c{CLOZE_MAX}",
                    f"number deletions c1, c2 ...; deckgen allows up to c{CLOZE_MAX} (a number above c65536 "
                    "makes Anki refuse the whole package)",
                )
            open_at.append(m)
        elif m.group(0) == "}}":
            if not open_at:
                continue  # a stray '}}' is text (shown as typed)
            opener = open_at.pop()
            content = text[opener.end() : m.start()]
            if not content.split("::")[0].strip():
                yield opener.start(), "cloze-malformed", "empty cloze deletion", "put the hidden text after '::'"
            elif any(True for _ in _math_problems(content)):
                yield (
                    m.start(),
                    "cloze-malformed",
                    "'}}' inside math ends the cloze deletion early",
                    "inside a deletion write '} }' (with a space) in LaTeX, e.g. {{c1::$x^{2} }$}}",
                )
        else:
            yield (
                m.start(),
                "cloze-malformed",
                f"malformed cloze deletion {m.group(0)!r}",
                "write {{c1::hidden text}}: a lowercase 'c', the number, two colons",
            )
    for opener in open_at:
        yield opener.start(), "cloze-unclosed", "cloze deletion is never closed", "close it with '}}'"


_TAG_OR_COMMENT_RE = re.compile(r"<[^<>]*>")


def answer_words(text: str) -> int:
    """Words of an answer as a reader meets them: code blocks and display math don't count."""
    masked = _mask_code(text)
    spans = markup.math_spans(masked)
    display = [s for s in spans if masked.startswith(("$$", "\\["), s[0])]
    inline = [s for s in spans if not masked.startswith(("$$", "\\["), s[0])]
    masked = markup.blank(markup.blank(masked, display), inline, "x")  # inline math: one word
    masked = _TAG_OR_COMMENT_RE.sub(" ", masked) if "<" in masked else masked
    links = [(offset, offset + len(url)) for _, offset, url, _ in markup.link_destinations(masked)]
    masked = markup.blank(masked, links)
    masked = masked.replace("![", "  ").replace("](", "  ")
    return sum(map(bool, map(_WORD_CHAR.search, masked.split())))


# The lines ``LIST_ITEM_RE`` matches, found at once in "\n" + text (within a line ``\s`` is ``[^\S\n]``;
# starting with "\n" rather than "^" lets the search skip from line break to line break).
_LIST_ITEM_LINE_RE = re.compile(r"\n[^\S\n]*(?:[-*+]|\d+[.)])[^\S\n]+\S")


def _long_lists(text: str, limit: int) -> Iterator[tuple[int, int]]:
    """(offset of the list's first item, item count) for lists longer than ``limit``."""
    masked = _mask_code(text)
    if len(_LIST_ITEM_LINE_RE.findall("\n" + masked)) <= limit:  # no list can be longer than all items together
        return
    counts: dict[int, list[int]] = {}  # indent → [first offset, count]
    offset = 0
    for line in masked.split("\n"):
        line_start, offset = offset, offset + len(line) + 1
        m = LIST_ITEM_RE.match(line)
        if m:
            indent = len(m.group(1).expandtabs(4))
            for deeper in [k for k in counts if k > indent]:
                yield from _flush(counts.pop(deeper), limit)
            entry = counts.setdefault(indent, [line_start, 0])
            entry[1] += 1
        elif line.strip() and not line.startswith((" ", "\t")):
            for k in list(counts):
                yield from _flush(counts.pop(k), limit)
    for k in list(counts):
        yield from _flush(counts.pop(k), limit)


def _flush(entry: list[int], limit: int) -> Iterator[tuple[int, int]]:
    if entry[1] > limit:
        yield entry[0], entry[1]


def _code_blocks(text: str) -> Iterator[tuple[int, int]]:
    """(offset of the opening fence, number of code lines) for each closed fenced block."""
    if "```" not in text and "~~~" not in text:  # a fence line holds one of them
        return
    lines = text.split("\n")
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line) + 1)
    for fence in find_fences(lines):
        if fence.end is not None:
            yield offsets[fence.start], fence.end - fence.start - 1


def lint_note(note: Note, config: LintConfig) -> list[Diagnostic]:
    """Spaced-repetition warnings for one note (minimum-information principle)."""
    path = note.location.path
    found: list[Diagnostic] = []
    words = answer_words(note.answer.text)
    if words > config.max_answer_words and not note.cloze:
        found.append(
            Diagnostic(
                note.answer.location(path),
                "answer-too-long",
                f"answer has {words} words (limit {config.max_answer_words})",
                "keep one idea per note: move elaboration below <!-- extra --> or split the note",
                Severity.WARNING,
            )
        )
    if PLACEHOLDER in note.answer.text:
        found.append(
            Diagnostic(
                note.answer.location(path, note.answer.text.index(PLACEHOLDER)),
                "placeholder",
                f"note '{note.id}' still has the skeleton answer {PLACEHOLDER!r}",
                "write the real answer (it would become a card as it is)",
                Severity.WARNING,
            )
        )
    if note.kind is Kind.QUESTION and not note.cloze and not note.prompt.rstrip().endswith("?"):
        found.append(
            Diagnostic(
                note.location,
                "prompt-not-question",
                "question prompt does not end with '?'",
                "phrase the prompt as a question, or use kind: tip / faq for the file",
                Severity.WARNING,
            )
        )
    for part, body in _parts(note):
        masked = _mask_code(body.text)
        # (the pattern needs a '?' and '**' or '__'; without them it would only scan the text in vain)
        if part != "prompt" and "?" in masked and ("**" in masked or "__" in masked):
            for m in BOLD_QUESTION_RE.finditer(masked):
                found.append(
                    Diagnostic(
                        body.location(path, m.start(1)),
                        "bold-question",
                        f"a bold question alone in a paragraph of the {part}: {m.group(1).strip()[:50]!r}",
                        "if it is the next question, make it a note ('## ' + the question, then its own id); "
                        "otherwise silence this with <!-- ignore: bold-question -->",
                        Severity.WARNING,
                    )
                )
        for offset, count in _long_lists(body.text, config.max_list_items):
            found.append(
                Diagnostic(
                    body.location(path, offset),
                    "list-too-long",
                    f"list of {count} items (limit {config.max_list_items})",
                    "split the note, or make it a cloze note with one deletion per item",
                    Severity.WARNING,
                )
            )
        for offset, lines in _code_blocks(body.text):
            if lines > config.max_code_lines:
                found.append(
                    Diagnostic(
                        body.location(path, offset),
                        "code-too-long",
                        f"code block of {lines} lines (limit {config.max_code_lines})",
                        "show only the lines that carry the idea",
                        Severity.WARNING,
                    )
                )
        remote = 0
        # an image's link text opens with '![': without one, no destination is an image
        links = markup.link_destinations(masked) if "![" in masked else iter(())
        for start, _, url, image in links:
            if not image or markup.url_scheme(url) not in ("http", "https"):
                continue
            remote += 1
            if remote > markup.MAX_FINDINGS_PER_RULE:
                break
            found.append(
                Diagnostic(
                    body.location(path, start),
                    "image-remote",
                    f"image {url!r} is loaded from the web",
                    "download it into the source folder and reference it relatively",
                    Severity.WARNING,
                )
            )
    return found + card_design(note, config)


# --- card design: one idea per card (each rule scans its text once, in linear time) -----------

# Inline and display math, scanned as delimiter tokens so an unclosed opener costs one pass, not one per opener.
_MATH_TOKEN = re.compile(r"\\\$|\$\$|\$|\\\(|\\\)|\\\[|\\\]")
_MATH_CLOSER = {"$$": "$$", "$": "$", "\\(": "\\)", "\\[": "\\]"}
# Markup that is not prose: HTML comments, link targets, cloze braces and hints.
_NOT_PROSE = re.compile(r"<!--.*?-->|\]\([^)\n]*\)|\{\{c\d+::|::[^{}\n]*?\}\}|\}\}", re.DOTALL)
# Where one enumeration ends and another may start: blank lines, list items, table cells, sentence ends, colons.
_CHUNK_END = re.compile(
    r"\n[ \t]*\n|\n(?=[ \t]*(?:[-*+]|\d+[.)])[ \t])|\||:(?=\s)|—(?=\s)"
    # (the abbreviations are looked behind only once a full stop is found: 7× faster than before it)
    r"|[.?!](?<!\be\.g.)(?<!\bi\.e.)(?<!\betc.)(?<!\bvs.)(?<!\bcf.)(?<!\bal.)(?<!\bNo.)(?=\s|$)"
)
_CLAUSE_START = re.compile(
    r"\s*(?:and\s+|but\s+)?(?:which|while|because|so|but|when|whereas|although|though|if|since|who|as|then|yet|unless)\b",
    re.I,
)
_MAX_DEPTH = 4  # brackets nested deeper are read as plain text (bounds the work on unclosed ones)
_CONJUNCTION = re.compile(r"\b(?:and|or|nor)\b", re.I)
_QUESTION_WORD = re.compile(r"\b(?:what|why|how|when|which|where|who|whose|whom)\b", re.I)
_SECOND_ASK = re.compile(r"\b(and)\s+(what|why|how|when|which|where|who|whose|whom)\b(.*)$", re.I | re.S)
_PROPERTY_ASK = re.compile(r"^\s*(?:is|are|does|do)\s+(?:its|their|each)\b", re.I)
_BACK_REFERENCE = re.compile(r"\b(?:it|its|they|them|their|this|these|those|each)\b", re.I)


def _math_spans(text: str) -> Iterator[tuple[int, int]]:
    if "$" not in text and "\\" not in text:  # every token holds one of them
        return
    opener, start = "", 0
    for m in _MATH_TOKEN.finditer(text):
        token = m.group(0)
        if token == "\\$":
            continue
        if not opener and token in _MATH_CLOSER:
            opener, start = token, m.start()
        elif opener and token == _MATH_CLOSER[opener]:
            yield start, m.end()
            opener = ""


@functools.lru_cache(maxsize=1024)  # the prompt and the answer are each read by two rules
def prose_only(text: str) -> str:
    """``text`` with code, math, comments, link targets and cloze markup blanked out (offsets kept)."""
    if markup.too_dense(text):  # already an error; the patterns below are not linear on such text
        return markup.blank(text, [(0, len(text))])
    masked = _mask_code(text)
    masked = markup.blank(masked, list(_math_spans(masked)))
    return markup.blank(masked, [m.span() for m in _NOT_PROSE.finditer(masked)])


def _items(prose: str, segments: list[tuple[int, int]]) -> list[str]:
    """The items of a comma-separated run; a last segment 'b and c' (both sides short) is two items."""
    items = [prose[a:b] for a, b in segments if _WORD_CHAR.search(prose[a:b])]
    if len(items) < 2:
        return items
    last = items[-1]
    m = _CONJUNCTION.search(last)
    if m and 0 < len(last[: m.start()].split()) <= 4 and 0 < len(last[m.end() :].split()) <= 4:
        items[-1:] = [last[: m.start()], last[m.end() :]]
    return items


_RUN_MARK = re.compile(r"[()\[\],;]")


def _runs(text: str) -> Iterator[tuple[int, list[str]]]:
    """(offset of the first item, items) of each comma- or semicolon-separated run in the prose of ``text``.

    A run is one sentence, clause after a colon, table cell or list item — or one bracketed group
    inside it, counted on its own. The comma of "1,000" separates nothing.
    """
    prose = prose_only(text)
    if "," not in prose and ";" not in prose:  # (see below: no separator, no run)
        return
    bounds = [0, *(m.end() for m in _CHUNK_END.finditer(prose)), len(prose)]
    for start, end in itertools.pairwise(bounds):
        if prose.find(",", start, end) < 0 and prose.find(";", start, end) < 0:
            continue  # without separators every group is one segment: one item, no run
        stack: list[tuple[int, list[tuple[int, int]]]] = [(start, [])]  # per open bracket: segment start, segments
        for mark in _RUN_MARK.finditer(prose, start, end):  # (only these characters matter)
            i, ch = mark.start(), mark.group()
            if ch in "([" and len(stack) <= _MAX_DEPTH:
                stack.append((i + 1, []))
            elif ch in ")]" and len(stack) > 1:
                seg_start, segments = stack.pop()
                yield from _run(prose, [*segments, (seg_start, i)])
            elif ch in ",;" and not (ch == "," and prose[i - 1 : i].isdigit() and prose[i + 1 : i + 2].isdigit()):
                seg_start, segments = stack[-1]
                segments.append((seg_start, i))
                stack[-1] = (i + 1, segments)
        while stack:
            seg_start, segments = stack.pop()
            yield from _run(prose, [*segments, (seg_start, end)])


def _run(prose: str, segments: list[tuple[int, int]]) -> Iterator[tuple[int, list[str]]]:
    if len(segments) < 2:  # one segment is one item at most: no run
        return
    items = _items(prose, segments)
    if len(items) >= 2:
        a, b = next(span for span in segments if _WORD_CHAR.search(prose[span[0] : span[1]]))
        yield a + len(prose[a:b]) - len(prose[a:b].lstrip()), items


def enumerations(text: str, limit: int) -> Iterator[tuple[int, int]]:
    """(offset, item count) of each run listing more than ``limit`` items, and of a catch-all answer.

    A run counts as a list, not a sentence of clauses, when its items are short (median at most five
    words, none longer than sixteen) and at most one item starts like a clause ("which", "while" …).
    A catch-all answer spreads more than twice ``limit`` items over several such lists of three or
    more; it is reported once, at its first list.
    """
    listed: list[tuple[int, int]] = []
    for offset, items in _runs(text):
        words = sorted(len(item.split()) for item in items)
        clauses = sum(1 for item in items if _CLAUSE_START.match(item))
        if len(items) >= 3 and words[(len(words) - 1) // 2] <= 5 and words[-1] <= 16 and clauses < 2:
            listed.append((offset, len(items)))
    for offset, count in listed:
        if count > limit:
            yield offset, count
    if len(listed) > 1 and all(count <= limit for _, count in listed):
        total = sum(count for _, count in listed)
        if total > 2 * limit:
            yield listed[0][0], total


def _cloze_overflow(text: str, limit: int) -> tuple[int, int] | None:
    """(offset of the first deletion numbered beyond the first ``limit`` numbers, number count)."""
    numbers: list[str] = []
    overflow = -1
    for m in CLOZE_RE.finditer(_mask_code(text)):
        if m.group(1) not in numbers:
            numbers.append(m.group(1))
            if len(numbers) == limit + 1:
                overflow = m.start()
    return (overflow, len(numbers)) if overflow >= 0 else None


def _second_ask(prompt: str) -> int | None:
    """Offset where a prompt starts asking for a second, separate fact, if it does.

    Two question marks always count. "…, and <wh-word> …?" counts when the second clause asks for
    its subject's properties ("and what are its mean and variance?"), or asks with another question
    word about something the first clause did not name; definition plus purpose or mechanism
    ("What is X, and why does it help?") stays one question, as does an elliptical "…, and why?".
    """
    prose = prose_only(prompt)
    if prose.count("?") > 1:
        first_mark = prose.index("?")
        rest = prose[first_mark + 1 :]
        return first_mark + 1 + len(rest) - len(rest.lstrip())
    m = _SECOND_ASK.search(prose)
    if m is None:
        return None
    rest = m.group(3).rstrip(" ?")
    if not rest.strip():
        return None
    first = _QUESTION_WORD.search(prose[: m.start()])
    asked, again = (first.group(0).casefold() if first else ""), m.group(2).casefold()
    if again == "what" and _PROPERTY_ASK.match(rest):
        return m.start(1)
    if asked == again or (again != "what" and _BACK_REFERENCE.search(rest)):
        return None
    return m.start(1)


_DEFINING = re.compile(
    r"^\s*(?:what|who)\s+(?:is|are|was|were|does|do)\s+(?:an?\s+|the\s+)?(.+?)"
    r"(?:\s+(?:measure|mean|compute|control|do|contain|capture|say|state)s?)?"
    r"\s*(?:,|\?|\(|\s+(?:for|in|of|with|between|and why|and how)\s|$)",
    re.I,
)
_GENERIC = frozenset(
    ["this", "that", "these", "those", "their", "model", "method", "problem", "score", "value", "data", "function"]
)


def key_term(prompt: str) -> str:
    """The term a defining prompt asks about ("What is the hashing trick for text?" → "hashing trick")."""
    m = _DEFINING.match(prose_only(prompt)) if len(prompt) <= 300 else None  # a defining prompt is short
    return m.group(1).strip() if m else ""


def _gives_away(term: str, answer: str) -> int | None:
    """Offset in ``answer`` of the term's acronym or its first distinctive word (any inflection)."""
    prose = prose_only(answer)
    head = term.split()[0] if term else ""
    if re.fullmatch(r"[A-Z]{2,6}", head):
        capitals = [w for w in re.finditer(r"(?<![\w*])\**([A-Za-z])", prose) if w.group(1).isupper()]
        at = "".join(w.group(1) for w in capitals).find(head)
        return capitals[at].start() if at >= 0 else None
    word = next((w for w in re.findall(r"[A-Za-z][\w-]{3,}", term) if w.casefold() not in _GENERIC), "")
    if not word:
        return None
    stem = word.casefold()[: max(4, len(word) - 3)]
    m = re.search(r"\b" + re.escape(stem), prose, re.I)
    return m.start() if m else None


def card_design(note: Note, config: LintConfig) -> list[Diagnostic]:
    """Warnings for cards that test more than one idea, or whose reversed side answers itself."""
    path = note.location.path
    found: list[Diagnostic] = []

    def warn(location: SourceLocation, rule: str, message: str, hint: str) -> None:
        found.append(Diagnostic(location, rule, message, hint, Severity.WARNING))

    prompt = Body(note.prompt, note.location.line)
    heading = len("## ")
    if note.cloze:
        overflow = _cloze_overflow(note.answer.text, config.max_cloze_deletions)
        if overflow is not None:
            warn(
                note.answer.location(path, overflow[0]),
                "cloze-too-many",
                f"cloze note with {overflow[1]} deletion numbers (limit {config.max_cloze_deletions})",
                "split the note: a few deletions per note, each cued by its own context",
            )
    else:
        second = _second_ask(note.prompt)
        if second is not None:
            warn(
                prompt.location(path, second + heading),
                "prompt-two-questions",
                "the prompt asks two questions",
                "ask one question per note; split it into two notes",
            )
    for offset, count in enumerations(note.answer.text, config.max_list_items):
        warn(
            note.answer.location(path, offset),
            "enumeration-in-prose",
            f"the answer lists {count} items in prose (limit {config.max_list_items} per list)",
            "keep the few items that matter, split the note, or make a cued cloze",
        )
    term = key_term(note.prompt) if note.reverse else ""
    at = _gives_away(term, note.answer.text) if term else None
    if at is not None:
        warn(
            note.answer.location(path, at),
            "reverse-gives-away",
            f"the reversed card's front names the answer '{term}'",
            "drop <!-- reverse -->, or reword the answer without the term",
        )
    return found


# Computes ``duplicate_pairs``; the build passes one that remembers the answer for unchanged prompts.
DuplicatePairs = Callable[[Sequence[str]], list[tuple[int, int]]]


def _duplicate_prompts(notes: list[Note], pairs: DuplicatePairs = duplicate_pairs) -> list[Diagnostic]:
    found: list[Diagnostic] = []
    for index, first in pairs([n.prompt for n in notes]):
        note, other = notes[index], notes[first]
        found.append(
            Diagnostic(
                note.location,
                "prompt-duplicate",
                f"prompt is (nearly) the same as note '{other.id}' at {other.location}",
                "merge the notes, or make each prompt ask for something distinct",
                Severity.WARNING,
            )
        )
    return found


def note_findings(note: Note, config: LintConfig) -> list[Diagnostic]:
    """Every finding about one note on its own (before silencing).

    Must depend on nothing but the note and the config: builds cache these results per note and
    compute them in worker processes. Rules that compare notes belong in ``check_deck``.
    """
    return source_errors(note) + lint_note(note, config)


# Computes ``note_findings`` for many notes (in order); the build passes a cached, parallel one.
NoteFindings = Callable[[Sequence[Note], LintConfig], Iterable[list[Diagnostic]]]


def check_deck(
    deck: Deck, findings: NoteFindings | None = None, duplicates: DuplicatePairs | None = None
) -> list[Diagnostic]:
    """All source errors and lint warnings of the parsed deck, with silenced warnings removed.

    ``findings`` and ``duplicates`` replace ``note_findings`` and ``duplicate_pairs`` with
    equivalent functions (the build's cached and parallel ones); the result is the same.
    """
    config = deck.config.lint
    found: list[Diagnostic] = []
    notes = list(deck.notes())
    # Duplicates first: a build's workers are still rendering (and this process is smaller) meanwhile.
    duplicate_found = _duplicate_prompts(notes, duplicates or duplicate_pairs)
    per_note = findings(notes, config) if findings else (note_findings(n, config) for n in notes)
    for note_found in per_note:
        found += note_found
    found += duplicate_found
    ignoring = [note for note in notes if note.ignore]  # (few notes, if any)
    for note in ignoring:
        for rule in sorted(note.ignore - RULES.keys()):
            found.append(
                Diagnostic(
                    note.location,
                    "note-option-invalid",
                    f"<!-- ignore --> names unknown rule {rule!r}",
                    "see the rule table in README.md",
                )
            )
    index: NoteIndex | None = None  # made only when a warning may be silenced by its note
    silencing = bool(ignoring)
    kept = []
    for d in found:
        if d.severity is not Severity.ERROR:
            if d.rule in config.disable:
                continue
            if not silencing:
                kept.append(d)
                continue
            index = index or NoteIndex(notes)
            owner = index.containing(d.location)
            if owner is not None and d.rule in owner.ignore:
                continue
        kept.append(d)
    return kept


def notes_with_errors(notes: Sequence[Note], diagnostics: Iterable[Diagnostic]) -> set[int]:
    """Positions in ``notes`` of the notes an error diagnostic is about (the note it falls in)."""
    index = NoteIndex(list(notes))
    position = {id(n): i for i, n in enumerate(notes)}
    found = set()
    for d in diagnostics:
        note = index.containing(d.location) if d.severity is Severity.ERROR else None
        if note is not None:
            found.add(position[id(note)])
    return found


class NoteIndex:
    """Finds the note a diagnostic belongs to: the last note of its file starting at or above its line."""

    def __init__(self, notes: list[Note]) -> None:
        by_location = {n.location: n for n in notes}
        self._exact = by_location
        self._lines: dict[Path, tuple[list[int], list[Note]]] = {}
        for loc, note in sorted(by_location.items(), key=lambda item: (str(item[0].path), item[0].line)):
            lines, owners = self._lines.setdefault(loc.path, ([], []))
            lines.append(loc.line)
            owners.append(note)

    def containing(self, location: SourceLocation) -> Note | None:
        note = self._exact.get(SourceLocation(location.path, location.line))
        if note is not None:
            return note
        lines, owners = self._lines.get(location.path, ([], []))
        i = bisect.bisect_right(lines, location.line)
        return owners[i - 1] if i else None
