"""``deckgen preview``: one static HTML page showing every card's front and back without Anki.

Cards are rendered with the real notetype templates and CSS by a small renderer for the part of
Anki's template language deckgen's notetypes use (``{{Field}}``, ``{{#F}}``/``{{^F}}``…``{{/F}}``,
``{{FrontSide}}``, ``{{cloze:F}}``, ``{{type:F}}``), following Anki's own rules (rslib's
``template.rs`` and ``cloze.rs``): the output before the type-in box is drawn is the same HTML
that the ``anki`` library's ``card.question()`` / ``card.answer()`` return (tests compare them).
The page needs no server and no network; MathJax is used when a local copy is found.
"""

from __future__ import annotations

import html
import importlib.util
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

from deckgen.anki import notetypes
from deckgen.build.lock import atomic_file
from deckgen.build.pipeline import Compiled, compile_deck
from deckgen.errors import DeckgenError, Diagnostic, Severity
from deckgen.render.markdown import RenderedNote
from deckgen.sources.check import notes_with_errors

# Where MathJax 3 lives inside the PyPI package ``django-static-mathjax`` (no dependencies; a plain
# copy of MathJax). The SVG build is self-contained: no font files to copy next to it.
MATHJAX_PACKAGE = "mathjax"
MATHJAX_FILE = "static/mathjax/es5/tex-svg-full.js"
MATHJAX_DEST = "mathjax/tex-svg-full.js"
INDEX = "index.html"
_MEDIA_NAME_RE = re.compile(r"^dg-[0-9a-f]{20}\.[a-z0-9]+$")


class TemplateError(ValueError):
    """A template uses a field or filter the preview does not know (a notetype bug, not an author error)."""


# --- Anki template language (the subset our notetypes use) -------------------------------------


@dataclass(frozen=True, slots=True)
class _Text:
    text: str


@dataclass(frozen=True, slots=True)
class _Replace:
    field: str
    filters: tuple[str, ...]  # as written, outermost first: {{type:cloze:F}} -> ("type", "cloze")


@dataclass(frozen=True, slots=True)
class _Section:
    field: str
    negated: bool
    body: tuple[_Text | _Replace | _Section, ...]


_Node = _Text | _Replace | _Section
_TAG_RE = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
# Anki's field_is_empty: only whitespace and empty <br>/<div> tags.
_EMPTY_FIELD_RE = re.compile(r"^(?:\s|</?(?:br|div) ?/?>)*$", re.IGNORECASE)
_KNOWN_FILTERS = frozenset({"cloze", "type"})


@cache
def parse_template(source: str) -> tuple[_Node, ...]:
    """Parse a card template into nodes; unbalanced sections raise TemplateError."""
    stack: list[tuple[str, bool, list[_Node]]] = [("", False, [])]
    pos = 0
    for m in _TAG_RE.finditer(source):
        if m.start() > pos:
            stack[-1][2].append(_Text(source[pos : m.start()]))
        pos = m.end()
        tag = m.group(1).strip()
        if tag[:1] in ("#", "^"):
            stack.append((tag[1:].strip(), tag[0] == "^", []))
        elif tag[:1] == "/":
            name, negated, body = stack.pop() if len(stack) > 1 else ("", False, [])
            if name != tag[1:].strip():
                raise TemplateError(f"{{{{{tag}}}}} closes {{{{#{name}}}}}" if name else f"stray {{{{{tag}}}}}")
            stack[-1][2].append(_Section(name, negated, tuple(body)))
        else:
            *filters, field = (part.strip() for part in tag.split(":"))
            unknown = set(filters) - _KNOWN_FILTERS
            if unknown:
                raise TemplateError(f"unsupported filter {sorted(unknown)[0]!r} in {{{{{tag}}}}}")
            stack[-1][2].append(_Replace(field, tuple(filters)))
    if len(stack) > 1:
        raise TemplateError(f"{{{{#{stack[-1][0]}}}}} is never closed")
    if pos < len(source):
        stack[-1][2].append(_Text(source[pos:]))
    return tuple(stack[0][2])


def field_is_empty(value: str) -> bool:
    return _EMPTY_FIELD_RE.match(value) is not None


def render_template(source: str, fields: Mapping[str, str], *, card_ord: int = 0, frontside: str | None = None) -> str:
    """Render one side like Anki: ``frontside`` is None on the question side, the question's HTML on the answer side.

    ``{{type:F}}`` becomes Anki's ``[[type:F]]`` marker; the reviewer (here: ``draw_type_in``) replaces it.
    """

    def value(node: _Replace) -> str:
        if node.field == "FrontSide" and not node.filters:
            return frontside or ""
        if node.field not in fields:
            raise TemplateError(f"unknown field {node.field!r}")
        if "type" in node.filters:  # drawn later by the reviewer, like Anki's [[type:F]] marker
            rest = node.filters[node.filters.index("type") + 1 :]
            return f"[[type:{':'.join((*rest, node.field))}]]"
        text = fields[node.field]
        for _ in node.filters:  # only "cloze" is left
            text = cloze_filter(text, card_ord + 1, question=frontside is None)
        return text

    def walk(nodes: tuple[_Node, ...], out: list[str]) -> None:
        for node in nodes:
            if isinstance(node, _Text):
                out.append(node.text)
            elif isinstance(node, _Replace):
                out.append(value(node))
            else:
                if node.field not in fields:
                    raise TemplateError(f"unknown field {node.field!r} in a section")
                if field_is_empty(fields[node.field]) == node.negated:
                    walk(node.body, out)

    out: list[str] = []
    walk(parse_template(source), out)
    return "".join(out)


# --- Clozes (Anki's cloze.rs) -------------------------------------------------------------------

_CLOZE_TOKEN_RE = re.compile(r"\{\{c(\d+)::|\}\}")
_MATHJAX_RE = re.compile(r"(\\[(\[])(.*?)(\\[)\]])", re.DOTALL | re.IGNORECASE)
_HTML_RE = re.compile(r"<!--.*?-->|<.*?>", re.DOTALL)
_MAX_CLOZE_DEPTH = 10


@dataclass(slots=True)
class _Cloze:
    ordinal: int
    nodes: list[str | _Cloze]
    hint: str | None = None

    def clozed_text(self) -> str:
        return "".join(n if isinstance(n, str) else n.clozed_text() for n in self.nodes)


def _parse_clozes(text: str) -> list[str | _Cloze]:
    open_clozes: list[_Cloze] = []
    output: list[str | _Cloze] = []
    pos = 0

    def add_text(chunk: str) -> None:
        if not chunk:
            return
        if open_clozes:
            head, sep, tail = chunk.partition("::")
            if sep:
                chunk, open_clozes[-1].hint = head, tail
            open_clozes[-1].nodes.append(chunk)
        else:
            output.append(chunk)

    for m in _CLOZE_TOKEN_RE.finditer(text):
        add_text(text[pos : m.start()])
        pos = m.end()
        if m.group(1) is not None:
            if len(open_clozes) < _MAX_CLOZE_DEPTH:
                open_clozes.append(_Cloze(int(m.group(1)), []))
        elif open_clozes:
            closed = open_clozes.pop()
            (open_clozes[-1].nodes if open_clozes else output).append(closed)
        else:
            output.append("}}")
    add_text(text[pos:])
    return output  # like Anki, clozes never closed are dropped


def encode_attribute(text: str) -> str:
    """htmlescape's encode_attribute, which Anki uses for ``data-cloze``."""
    minimal = {'"': "&quot;", "&": "&amp;", "'": "&#x27;", "<": "&lt;", ">": "&gt;"}
    out = []
    for ch in text:
        if ch in minimal:
            out.append(minimal[ch])
        elif ord(ch) < 256 and (ord(ch) > 127 or not (ch.isascii() and ch.isalnum())):
            out.append(f"&#x{ord(ch):02X};")
        else:
            out.append(ch)
    return "".join(out)


def _reveal(cloze: _Cloze, ordinal: int, question: bool, found: list[bool], buf: list[str]) -> None:
    active = cloze.ordinal == ordinal
    found[0] |= active

    def children(into: list[str]) -> None:
        for node in cloze.nodes:
            if isinstance(node, str):
                into.append(node)
            else:
                _reveal(node, ordinal, question, found, into)

    if question and active:
        content: list[str] = []
        children(content)
        hint = "..." if cloze.hint is None else cloze.hint
        buf.append(
            f'<span class="cloze" data-cloze="{encode_attribute("".join(content))}" '
            f'data-ordinal="{cloze.ordinal}">[{hint}]</span>'
        )
    else:
        css = "cloze" if active else "cloze-inactive"
        buf.append(f'<span class="{css}" data-ordinal="{cloze.ordinal}">')
        children(buf)
        buf.append("</span>")


def _strip_html(text: str) -> str:
    return _HTML_RE.sub("", text)


def cloze_filter(text: str, ordinal: int, *, question: bool) -> str:
    """``{{cloze:F}}`` for cloze number ``ordinal``; empty when the field has no such deletion."""
    buf: list[str] = []
    found = [False]
    for node in _parse_clozes(text):
        if isinstance(node, str):
            buf.append(node)
        else:
            _reveal(node, ordinal, question, found, buf)
    if not found[0]:
        return ""
    # Inside \( \) and \[ \] Anki strips the markup again, so MathJax sees plain TeX.
    return _MATHJAX_RE.sub(lambda m: m.group(1) + _strip_html(m.group(2)) + m.group(3), "".join(buf))


# --- Cards of a note -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CardSides:
    """One card as Anki renders it (``question``/``answer`` hold ``[[type:F]]`` markers like Anki's)."""

    ord: int
    name: str
    question: str
    answer: str


def card_sides(note: RenderedNote) -> tuple[CardSides, ...]:
    """Every card the note generates, in card order."""
    nt = note.notetype
    fields = dict(zip(nt.fields, note.fields, strict=True))
    out = []
    for ord_ in note.card_ords:
        template = nt.templates[0] if nt.is_cloze else nt.templates[ord_]
        name = f"Cloze {ord_ + 1}" if nt.is_cloze else template.name
        question = render_template(template.front, fields, card_ord=ord_)
        answer = render_template(template.back, fields, card_ord=ord_, frontside=question)
        out.append(CardSides(ord_, name, question, answer))
    return tuple(out)


_TYPE_MARKER_RE = re.compile(r"\[\[type:(.+?)\]\]")


def draw_type_in(side: str, fields: Mapping[str, str], *, question: bool) -> str:
    """What Anki's reviewer does with ``[[type:F]]``: an input on the front, the expected answer on the back."""

    def box(m: re.Match[str]) -> str:
        expected = fields.get(m.group(1), "")  # the field's HTML (escaped plain text for TypeIn)
        attribute = _esc(html.unescape(_strip_html(expected)))
        if question:
            return (
                '<input type="text" id="typeans" class="pv-typeans" autocomplete="off" spellcheck="false" '
                f'aria-label="Type the answer" placeholder="Type the answer" data-expected="{attribute}">'
            )
        return f'<code id="typeans" data-expected="{attribute}">{expected}</code>'

    return _TYPE_MARKER_RE.sub(box, side)


# --- The page ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PreviewResult:
    path: Path
    notes: int
    cards: int
    subdecks: int
    media: int
    mathjax: Path | None
    diagnostics: tuple[Diagnostic, ...]

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.severity is Severity.ERROR)


def find_mathjax() -> Path | None:
    """A local MathJax 3 (SVG output, one file) from the installed ``django-static-mathjax`` package."""
    spec = importlib.util.find_spec(MATHJAX_PACKAGE)
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / MATHJAX_FILE
        if candidate.is_file():
            return candidate
    return None


def _asset(name: str) -> str:
    return resources.files("deckgen").joinpath(f"data/{name}").read_text(encoding="utf-8")


def _plain(fragment: str) -> str:
    return " ".join(html.unescape(_strip_html(fragment)).split())


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def _note_html(note: RenderedNote, source_root: Path) -> str:
    nt = note.notetype
    fields = dict(zip(nt.fields, note.fields, strict=True))
    cards = card_sides(note)
    searchable = " ".join(
        [note.note.id, *note.tags, *(_plain(fields[f]) for f in ("Prompt", "Answer", "Text", "Extra") if f in fields)]
    )
    try:
        where = note.note.location.path.relative_to(source_root).as_posix()
    except ValueError:
        where = note.note.location.path.name
    n = len(cards)
    meta = [
        f'<span class="pv-id">{_esc(note.note.id)}</span>',
        _esc(nt.name),
        _esc(fields.get("Kind", "")),
        f"{n} card{'s' * (n != 1)}",
        f"{_esc(where)}:{note.note.location.line}",
    ]
    tags = " ".join(f'<span class="pv-tag">{_esc(t)}</span>' for t in note.tags)
    rows = []
    for card in cards:
        sides = []
        for label, side, question in (("front", card.question, True), ("back", card.answer, False)):
            body = draw_type_in(side, fields, question=question)
            sides.append(
                f'<div class="pv-side"><div class="pv-side-label">{_esc(card.name)} · {label}</div>'
                f'<div class="pv-frame"><div class="card card{card.ord + 1}" data-side="{label}">{body}</div></div>'
                "</div>"
            )
        rows.append(f'<div class="pv-cardrow" data-card="{_esc(card.name)}">{"".join(sides)}</div>')
    return (
        f'<article class="pv-note" id="note-{_esc(note.note.id)}" data-search="{_esc(searchable.lower())}">'
        f'<div class="pv-meta">{" · ".join(meta)}</div>'
        f'<div class="pv-tags">{tags}</div>{"".join(rows)}</article>'
    )


def shown_notes(compiled: Compiled) -> tuple[RenderedNote, ...]:
    """The notes the preview shows: every note an error is about is left out, like the ones parsing
    already dropped, so the page never shows a card the build would refuse (and no id twice)."""
    broken = notes_with_errors([rn.note for rn in compiled.notes], compiled.errors)
    return tuple(rn for i, rn in enumerate(compiled.notes) if i not in broken)


def _problems_html(diagnostics: tuple[Diagnostic, ...]) -> str:
    if not diagnostics:
        return ""
    errors = sum(d.severity is Severity.ERROR for d in diagnostics)
    warnings = len(diagnostics) - errors
    items = "".join(f"<li>{_esc(d.format())}</li>" for d in diagnostics)
    summary = f"{errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}"
    note = " (notes with errors are left out of the preview)" if errors else ""
    # Errors are what the author must act on: the list starts open then; warnings alone start folded.
    opened = " open" if errors else ""
    return (
        f'<details class="pv-problems tex2jax_ignore"{opened}><summary>{summary}{note}</summary>'
        f'<ol class="pv-problem-list">{items}</ol></details>'
    )


def _mathjax_head(available: bool) -> str:
    if not available:
        return "<script>document.documentElement.dataset.mathjax = 'missing';</script>"
    # Anki's own MathJax settings: only \( \) and \[ \], no $ and no bare environments.
    return (
        "<script>window.MathJax = {"
        "tex: {inlineMath: [['\\\\(', '\\\\)']], displayMath: [['\\\\[', '\\\\]']],"
        " processEscapes: false, processEnvironments: false, processRefs: false},"
        " svg: {fontCache: 'global'},"
        " options: {enableMenu: false, ignoreHtmlClass: 'tex2jax_ignore', processHtmlClass: 'tex2jax_process'},"
        " startup: {pageReady: () => MathJax.startup.defaultPageReady().then("
        "() => { document.documentElement.dataset.mathjax = 'ready'; })}"
        "};</script>\n"
        f'<script src="{MATHJAX_DEST}" id="MathJax-script" defer></script>'
    )


def build_page(compiled: Compiled, *, mathjax: bool) -> str:
    """The whole preview page as one HTML string (pure: no I/O)."""
    deck = compiled.deck
    shown = shown_notes(compiled)
    by_deck: dict[str, list[RenderedNote]] = {}
    for note in shown:
        by_deck.setdefault(note.deck, []).append(note)
    sections, toc = [], []
    total_cards = 0
    for i, category in enumerate(deck.categories, start=1):
        name = deck.subdeck_name(category)
        notes = by_deck.get(name, [])
        cards = sum(len(n.card_ords) for n in notes)
        total_cards += cards
        count = f"{len(notes)} note{'s' * (len(notes) != 1)}, {cards} card{'s' * (cards != 1)}"
        intro = compiled.intros.get(name, "")
        toc.append(f'<a class="pv-toc-link" href="#deck-{i}">{_esc(category.name)}</a>')
        sections.append(
            f'<section class="pv-deck" id="deck-{i}" data-deck="{_esc(category.name)}">'
            f'<h2 class="pv-deck-title">{_esc(category.name)} <span class="pv-count">{count}</span></h2>'
            + (f'<div class="pv-intro">{intro}</div>' if intro else "")
            + "".join(_note_html(n, deck.root) for n in notes)
            + "</section>"
        )
    css = notetypes.card_css()  # both notetypes share one stylesheet
    n_notes = len(shown)
    summary = (
        f"{n_notes} note{'s' * (n_notes != 1)} · {total_cards} card{'s' * (total_cards != 1)} · "
        f"{len(deck.categories)} subdeck{'s' * (len(deck.categories) != 1)}"
    )
    notice = (
        ""
        if mathjax
        else '<p class="pv-notice" role="status">MathJax was not found, so math is shown as TeX source '
        '(<code class="pv-code">\\( … \\)</code>). Install it with <code class="pv-code">pip install '
        "'deckgen[preview]'</code> or pass <code class=\"pv-code\">--mathjax FILE</code> "
        '(a MathJax 3 <code class="pv-code">tex-svg-full.js</code>). Anki renders the math itself.</p>'
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="deckgen preview">
<title>{_esc(deck.name)} · deckgen preview</title>
<style id="dg-card-css">
{css}
</style>
<style id="pv-css">
{_asset("preview.css")}
</style>
{_mathjax_head(mathjax)}
</head>
<body class="pv">
<header class="pv-bar tex2jax_ignore">
<div class="pv-title"><span class="pv-deck-name">{_esc(deck.name)}</span>
<span class="pv-summary">{summary}</span></div>
<div class="pv-controls">
<input type="search" id="pv-search" class="pv-search" placeholder="Search notes" aria-label="Search notes">
<label class="pv-toggle"><input type="checkbox" id="pv-night"> Night mode</label>
<label class="pv-toggle"><input type="checkbox" id="pv-phone"> Phone width (360 px)</label>
<span id="pv-status" class="pv-status" aria-live="polite"></span>
</div>
</header>
{notice}{_problems_html(compiled.diagnostics)}
<nav class="pv-toc tex2jax_ignore" aria-label="Subdecks">{"".join(toc)}</nav>
<main class="pv-main">
{"".join(sections)}
<p class="pv-empty" id="pv-empty" hidden>No note matches the search.</p>
</main>
<script>
{_asset("preview.js")}
</script>
</body>
</html>
"""


def write_preview(source: Path, out_dir: Path, *, now: int, mathjax: Path | None) -> PreviewResult:
    """Compile ``source`` (read-only: the lock is not written) and write ``out_dir/index.html`` with its media."""
    compiled = compile_deck(source, now)
    try:
        path = _write_files(compiled, out_dir, mathjax)
    except OSError as exc:
        raise DeckgenError(f"cannot write the preview to {exc.filename or out_dir}: {exc.strerror or exc}") from exc
    shown = shown_notes(compiled)
    return PreviewResult(
        path=path,
        notes=len(shown),
        cards=sum(len(n.card_ords) for n in shown),
        subdecks=len(compiled.deck.categories),
        media=len(compiled.media),
        mathjax=mathjax,
        diagnostics=compiled.diagnostics,
    )


def _write_files(compiled: Compiled, out_dir: Path, mathjax: Path | None) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.iterdir():
        if _MEDIA_NAME_RE.match(stale.name) and stale.name not in compiled.media and stale.is_file():
            stale.unlink()
    for name, data in compiled.media.items():
        target = out_dir / name
        if not target.is_file() or target.read_bytes() != data:
            target.write_bytes(data)
    if mathjax is not None:
        dest = out_dir / MATHJAX_DEST
        dest.parent.mkdir(exist_ok=True)
        shutil.copyfile(mathjax, dest)
    path = out_dir / INDEX
    with atomic_file(path) as fh:
        fh.write(build_page(compiled, mathjax=mathjax is not None).encode("utf-8"))
    return path
