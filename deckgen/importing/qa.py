"""Read Markdown Q&A lists in their common layouts into imported categories.

Layouts recognised, also mixed within one file:

- heading questions: ``## What is X?`` or ``### What is X?`` (the level that holds the questions is
  the deepest one with a heading ending in '?'; shallower headings are sections);
- bold-line questions: ``**What is X?**`` alone on a line (or ``**Q:** What is X?``);
- numbered questions: ``1. What is X?`` with the answer indented below it or in the next paragraph
  (these two only in files whose headings hold no questions: there they are part of an answer);
- ``<details><summary>What is X?</summary>answer</details>``; a ``<details>`` whose summary only
  says "Answer" / "Show answer" is unwrapped: its content is the answer of the question before it.

A ``# Title`` first heading names the deck; sections above the question level become one category
each. Pure: text in, categories and diagnostics out.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from deckgen.authoring import file_slug
from deckgen.errors import Diagnostic, Severity
from deckgen.sources.check import math_problems
from deckgen.sources.config import deck_name_from_path
from deckgen.sources.markup import mask_code, scan
from deckgen.sources.model import SourceLocation
from deckgen.sources.parse import HEADING_RE, decode, find_fences

from .model import ImportedCategory, ImportedNote

_BOLD_LINE_RE = re.compile(r"^\s*(?:[-*+]\s+)?(\*\*|__)(?P<q>[^*_].*?)\1\s*(?P<rest>[?:]?)\s*$")
_QA_LINE_RE = re.compile(r"^\s*(?:\*\*|__)?Q(?:uestion)?\s*\d*\s*[:.](?:\*\*|__)?\s*(?P<q>\S.*)$", re.I)
_ANSWER_PREFIX_RE = re.compile(r"^\s*(?:\*\*|__)?A(?:nswer)?\s*\d*\s*[:.](?:\*\*|__)?\s*", re.I)
_NUMBERED_RE = re.compile(r"^(?P<num>\d{1,3})[.)]\s+(?P<q>\S.*)$")
_NUMBER_PREFIX_RE = re.compile(r"^(?:\d{1,3}[.)]|Q\s*\d*\s*[:.])\s+", re.I)
_DETAILS_OPEN_RE = re.compile(r"^\s*<details\b[^>]*>\s*(?P<rest>.*)$", re.I)
_SUMMARY_RE = re.compile(r"^\s*<summary\b[^>]*>(?P<s>.*?)</summary>\s*(?P<rest>.*)$", re.I | re.S)
_DETAILS_CLOSE_RE = re.compile(r"</details>\s*$", re.I)
_RULE_RE = re.compile(r"^\s*(?:-{3,}|\*{3,}|_{3,})\s*$")
# "$5", "$1,200." — a dollar before an amount, not opening a formula (deckgen reads $..$ as math).
_CURRENCY_RE = re.compile(r"(?<![\\$])\$(?=\d[\d,.]*(?:[\s;:!?)]|[.,](?:\s|$)|$))")
_CODE_SPAN_RE = re.compile(r"(`+).+?\1")
_CLOZE_OPEN_RE = re.compile(r"\{\{(c\d+::)")
_SINGLE_DOLLAR_RE = re.compile(r"(?<![\\$])\$(?!\$)")
_GENERIC_SUMMARY_WORDS = {
    "show", "see", "view", "reveal", "click", "here", "to", "expand", "toggle", "the", "answer", "answers",
    "solution", "explanation", "details", "hint", "a",
}  # fmt: skip


@dataclass(slots=True)
class _Item:
    """A question found in the text: its prompt, first line and the answer lines after it."""

    prompt: str
    line: int  # index into lines
    answer: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Section:
    title: str
    line: int
    intro: list[str] = field(default_factory=list)
    items: list[_Item] = field(default_factory=list)
    loose: list[int] = field(default_factory=list)  # lines of text after its questions that belong to none


def _plain_heading(text: str) -> str:
    return re.sub(r"[ \t]+#+$", "", text).strip()


def clean_prompt(text: str) -> str:
    """``**1. What is X?**`` → ``What is X?``: one line, no numbering, no wrapping bold."""
    text = " ".join(text.split())
    m = re.fullmatch(r"(\*\*|__)(.+?)\1([?:.]?)", text)
    if m:
        text = m.group(2).strip() + (m.group(3) if m.group(3) == "?" else "")
    text = _NUMBER_PREFIX_RE.sub("", text).strip()
    m = re.fullmatch(r"(\*\*|__)(.+?)\1", text)
    return _outside_code_spans((m.group(2) if m else text).strip(), _escape_cloze)


def _is_generic_summary(summary: str) -> bool:
    words = re.findall(r"[a-z]+", re.sub(r"<[^>]+>", "", summary).lower())
    return all(w in _GENERIC_SUMMARY_WORDS for w in words)


def _question_level(headings: list[tuple[int, int, str]], title_line: int | None) -> int | None:
    """The heading level that holds questions: the deepest one with a heading ending in '?'."""
    levels = [lvl for i, lvl, text in headings if i != title_line and clean_prompt(text).endswith("?")]
    return max(levels) if levels else None


def _split_details(lines: list[str]) -> tuple[str, list[str]] | None:
    """A ``<details>`` block that is the whole of ``lines`` → (summary, content lines), else None."""
    text = "\n".join(lines).strip()
    m = re.fullmatch(r"<details\b[^>]*>\s*<summary\b[^>]*>(.*?)</summary>(.*)</details>", text, re.I | re.S)
    if m is None or "<details" in m.group(2).lower():
        return None
    return m.group(1).strip(), m.group(2).split("\n")


def _tidy_answer(lines: list[str]) -> str:
    """Answer lines → Markdown: details unwrapped, indentation removed, headings made bold."""
    while lines and (not lines[-1].strip() or _RULE_RE.match(lines[-1])):
        lines = lines[:-1]
    while lines and not lines[0].strip():
        lines = lines[1:]
    details = _split_details(lines)
    if details is not None and _is_generic_summary(details[0]):
        lines = details[1]
    text = textwrap.dedent("\n".join(lines)).strip("\n")
    if text:
        first, *rest = text.split("\n")
        first = _ANSWER_PREFIX_RE.sub("", first)
        text = "\n".join([first, *rest]).strip()
    lines = text.split("\n")
    unclosed = [f for f in find_fences(lines) if f.end is None]
    if unclosed:  # the input's fence ran to its end; the answer's code block ends with the answer
        lines.append(lines[unclosed[0].start].strip()[: len(unclosed[0].marker)])
    fenced = _fenced_lines(lines)
    prose = [i for i in range(len(lines)) if i not in fenced]
    # An odd number of '$' cannot all be math: then amounts of money are what is left unclosed.
    if sum(len(_SINGLE_DOLLAR_RE.findall(_CODE_SPAN_RE.sub("", lines[i]))) for i in prose) % 2:
        for i in prose:
            lines[i] = _outside_code_spans(lines[i], lambda t: _CURRENCY_RE.sub(r"\\$", t))
    for i in prose:
        m = HEADING_RE.match(lines[i])
        if m and m.group(2):
            lines[i] = f"**{_plain_heading(m.group(2))}**"
        lines[i] = _outside_code_spans(lines[i], _escape_cloze)
    return _balance_html(_defuse_stray_math("\n".join(lines).strip()))


def _balance_html(text: str) -> str:
    """A block element the list never closes is closed at the end of its answer (a browser does the
    same); a closing tag that closes nothing is dropped (a browser ignores it)."""
    for _ in range(20):
        found = [f for f in scan(mask_code(text)) if f.rule == "html-unbalanced"]
        tag = _TAG_AT_RE.match(text, found[0].offset) if found else None
        if tag is None:
            break
        stray = bool(tag.group(1))
        text = text[: tag.start()] + text[tag.end() :] if stray else f"{text.rstrip()}\n</{tag.group(2).lower()}>"
    return text.strip()


_TAG_AT_RE = re.compile(r"<(/?)([A-Za-z][\w-]*)[^>]*>")
_STRAY_MATH = {"$$": "\\$\\$", "$": "\\$", "\\(": "(", "\\)": ")", "\\[": "[", "\\]": "]"}


def _defuse_stray_math(text: str) -> str:
    """A math delimiter that is never closed shows as text on GitHub (``\\(`` as "("): make it text here too."""
    for _ in range(20):  # each pass fixes one delimiter; a handful is already unusual
        problems = math_problems(text)
        if not problems:
            break
        offset = problems[0][0]
        token = next(t for t in _STRAY_MATH if text.startswith(t, offset))
        text = text[:offset] + _STRAY_MATH[token] + text[offset + len(token) :]
    return text


def _escape_cloze(text: str) -> str:
    """``{{c1::`` in a Q&A list is text, not a cloze deletion: ``\\{\\{c1::`` shows the same braces."""
    return _CLOZE_OPEN_RE.sub(r"\\{\\{\1", text)


def _outside_code_spans(line: str, change: Callable[[str], str]) -> str:
    parts, last = [], 0
    for m in _CODE_SPAN_RE.finditer(line):
        parts += [change(line[last : m.start()]), m.group(0)]
        last = m.end()
    parts.append(change(line[last:]))
    return "".join(parts)


def _fenced_lines(lines: list[str]) -> set[int]:
    inside: set[int] = set()
    for fence in find_fences(lines):
        inside.update(range(fence.start, (len(lines) - 1 if fence.end is None else fence.end) + 1))
    return inside


def _details_question(lines: list[str], start: int) -> tuple[str, int, list[str]] | None:
    """A ``<details>`` at ``start`` whose summary is a question → (prompt, index after it, answer lines)."""
    for end in range(start, len(lines)):
        if _DETAILS_CLOSE_RE.search(lines[end]):
            found = _split_details(lines[start : end + 1])
            if found is None or _is_generic_summary(found[0]):
                return None
            return clean_prompt(re.sub(r"<[^>]+>", "", found[0])), end + 1, found[1]
    return None


def parse_qa(data: bytes, path: Path) -> tuple[list[ImportedCategory], list[Diagnostic]]:
    """Find the questions and answers of one Markdown file."""
    text, problems = decode(data, path)
    if text is None:
        return [], problems
    scanner = _Scanner(text.split("\n"), path)
    scanner.scan()
    return _categories(scanner.sections, scanner.title, path, problems), problems


class _Scanner:
    """One pass over a file's lines, sorting each into a section's intro, a question or an answer."""

    def __init__(self, lines: list[str], path: Path) -> None:
        self.lines = lines
        self.start = 0
        if lines and lines[0].strip() == "---":  # front matter of a static-site page: not content
            ends = [i for i in range(1, len(lines)) if lines[i].strip() in ("---", "...")]
            self.start = ends[0] + 1 if ends else 0
        self.fenced = _fenced_lines(lines)
        headings = [
            (i, len(m.group(1)), m.group(2) or "")
            for i in range(self.start, len(lines))
            if i not in self.fenced and (m := HEADING_RE.match(lines[i]))
        ]
        self.title_line = headings[0][0] if headings and headings[0][1] == 1 else None
        self.title = _plain_heading(headings[0][2]) if self.title_line is not None else deck_name_from_path(path)
        self.level = _question_level(headings, self.title_line)
        self.heading_at = {i: (lvl, text) for i, lvl, text in headings}
        first = self.title_line if self.title_line is not None else self.start
        self.sections = [_Section(self.title, first)]
        self.current: _Item | None = None

    def _text(self, i: int) -> None:
        section = self.sections[-1]
        if self.current is not None:
            self.current.answer.append(self.lines[i])
        elif not section.items:
            section.intro.append(self.lines[i])
        elif self.lines[i].strip():
            section.loose.append(i)

    def _question(self, item: _Item) -> None:
        self.sections[-1].items.append(item)
        self.current = item

    def scan(self) -> None:
        i = self.start
        while i < len(self.lines):
            i = self._line(i)

    def _line(self, i: int) -> int:
        """Sort line ``i``; returns the index of the next line to look at."""
        line = self.lines[i]
        if i in self.fenced:
            self._text(i)
        elif (
            self.current is not None
            and _RULE_RE.match(line)
            and (line.strip()[0] != "-" or not self.lines[i - 1].strip())
        ):
            self.current = None  # a thematic break ends an answer ('---' under text would make it a heading)
        elif i == self.title_line:
            pass
        elif i in self.heading_at:
            self._heading(i)
        elif self.level is None and (prompt := _line_question(line)) is not None:
            # once headings hold the questions, a bold or numbered line ending in '?' is part of an answer
            self._question(_Item(prompt, i))
        elif _DETAILS_OPEN_RE.match(line) and (found := _details_question(self.lines, i)) is not None:
            self._question(_Item(found[0], i, found[2]))
            self.current = None  # text after the block is not part of this answer
            return found[1]
        else:
            self._text(i)
        return i + 1

    def _heading(self, i: int) -> None:
        lvl, text = self.heading_at[i]
        if self.level is not None and lvl == self.level:
            self._question(_Item(clean_prompt(_plain_heading(text)), i))
        elif self.level is None or lvl < self.level:
            self.sections.append(_Section(_plain_heading(text), i))
            self.current = None
        else:
            self._text(i)


def _numbered_question(line: str) -> str | None:
    m = _NUMBERED_RE.match(line)
    if m is None:
        return None
    prompt = clean_prompt(m.group("q"))
    return prompt if prompt.endswith("?") else None


def _line_question(line: str) -> str | None:
    """A question written on one line: bold alone on its line, ``Q: ...``, or ``1. ...?``."""
    m = _BOLD_LINE_RE.match(line)
    if m and (m.group("q").rstrip().endswith("?") or m.group("rest") == "?"):
        return clean_prompt(m.group("q")) + ("?" if m.group("rest") == "?" else "")
    m = _QA_LINE_RE.match(line)
    if m:
        return clean_prompt(m.group("q"))
    return _numbered_question(line)


def _categories(sections: list[_Section], root: str, path: Path, problems: list[Diagnostic]) -> list[ImportedCategory]:
    out: list[ImportedCategory] = []
    for section in sections:
        notes = []
        for item in section.items:
            where = SourceLocation(path, item.line + 1)
            answer = _tidy_answer(item.answer)
            if not answer:
                problems.append(
                    Diagnostic(
                        where,
                        "import-no-answer",
                        f"question {item.prompt!r} has no answer; not imported",
                        "write its answer below it and import again, or add the note by hand",
                        Severity.WARNING,
                    )
                )
                continue
            notes.append(ImportedNote(prompt=item.prompt, answer=answer, location=where))
        if section.loose:
            problems.append(
                Diagnostic(
                    SourceLocation(path, section.loose[0] + 1),
                    "import-text-skipped",
                    f"{len(section.loose)} line(s) after the questions of {section.title!r} belong to no question; "
                    "not imported",
                    "if it is an answer, put its question above it and import again",
                    Severity.WARNING,
                )
            )
        if notes:
            intro = _tidy_answer(section.intro)
            where = SourceLocation(path, section.line + 1)
            out.append(ImportedCategory(section.title, _stem(section.title), tuple(notes), where, intro, root))
    if not out:
        problems.append(
            Diagnostic(
                SourceLocation(path, 1),
                "import-nothing-found",
                "no questions found",
                "questions are '## ' or '### ' headings, **bold** lines, numbered lines ending in '?', "
                "or <details><summary>question</summary>answer</details>",
                Severity.WARNING,
            )
        )
    return out


def _stem(title: str) -> str:
    return file_slug(title) if title else "imported"
