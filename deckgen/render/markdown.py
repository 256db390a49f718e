"""Render notes' Markdown into the HTML fields Anki shows.

Python-Markdown with tables, footnotes and nested fenced code; Pygments highlighting with CSS
classes (never inline styles, so night mode can restyle code); math passed through untouched as
``\\(..\\)`` / ``\\[..\\]`` for Anki's MathJax; images rewritten to flat media names; ``{{``/``}}``
neutralised so text can never become Anki field or cloze syntax.
"""

from __future__ import annotations

import functools
import html
import importlib
import importlib.util
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from deckgen.anki import notetypes
from deckgen.errors import Diagnostic
from deckgen.render.sanitize import POLICY, is_clean, needs_sanitizer, sanitize
from deckgen.sources.markup import MAX_NESTING, nesting_depth, too_dense
from deckgen.sources.model import Body, Category, Deck, Note

if TYPE_CHECKING:
    import markdown

    from deckgen.render.converter import _Media

EXTENSIONS: tuple[str, ...] = (
    "markdown.extensions.tables",
    "markdown.extensions.footnotes",
    "markdown.extensions.attr_list",
    "markdown.extensions.def_list",
    "markdown.extensions.abbr",
    "markdown.extensions.sane_lists",
    "pymdownx.superfences",
    "pymdownx.highlight",
    "pymdownx.arithmatex",
    "markdown.extensions.md_in_html",
)
EXTENSION_CONFIGS: dict[str, dict[str, object]] = {
    "pymdownx.highlight": {"use_pygments": True, "noclasses": False, "css_class": "highlight", "guess_lang": False},
    "pymdownx.arithmatex": {"generic": True, "smart_dollar": True},
}
# Bump when the renderer's output changes for the same input (it keys the render cache).
# 2: Markdown inside <details>/<summary> is rendered; sounds.
RENDER_FORMAT = 2


def renderer_version() -> str:
    """Everything that decides rendered output: our format, extension settings, library versions."""
    libs = ",".join(f"{m}={_library_version(m, dist)}" for m, dist in _LIBRARIES.items())
    return f"{RENDER_FORMAT};{libs};{EXTENSIONS!r};{sorted(EXTENSION_CONFIGS.items())!r};{POLICY}"


_LIBRARIES = {"markdown": "markdown", "pymdownx": "pymdown_extensions", "pygments": "pygments", "nh3": "nh3"}


def _library_version(module: str, distribution: str) -> str:
    """An installed library's version, from its metadata folder's name (``markdown-3.11.3.dist-info``)
    beside it: importing Python-Markdown to ask would cost every command ~35 ms, importlib.metadata ~40."""
    spec = importlib.util.find_spec(module)
    if spec is not None and spec.origin is not None:
        folder = Path(spec.origin).parent
        site = folder.parent if spec.submodule_search_locations is not None else folder
        name = re.compile(f"(?i){re.sub('[-_.]+', '[-_.]', distribution)}-([^-]+)\\.dist-info")
        found = {m.group(1) for entry in _listing(site) if (m := name.fullmatch(entry))}
        if len(found) == 1:
            return found.pop()
    return str(importlib.import_module(module).__version__)  # no (or an ambiguous) metadata folder


@functools.cache
def _listing(folder: Path) -> tuple[str, ...]:
    try:
        return tuple(os.listdir(folder))
    except OSError:
        return ()


class MediaError(Exception):
    """An image reference that cannot be packaged (missing, outside the sources, unreadable)."""

    def __init__(self, message: str, hint: str = "", rule: str = "image-missing") -> None:
        super().__init__(message)
        self.hint = hint
        self.rule = rule


AUDIO_TYPES = {".mp3", ".ogg", ".oga", ".wav", ".m4a", ".flac", ".opus"}

# Maps an image reference (as written, relative to the note's file) to its flat media name.
ImageResolver = Callable[[Path, str], str]

_CLOZE_OPEN_RE = re.compile(r"\{\{c(\d+)::")


def free_prefix(text: str, stem: str) -> str:
    """``stem`` plus the shortest suffix that does not occur in ``text``: placeholders built on it can
    never be produced by the author's text (which could otherwise inject a cloze marker or a '|')."""
    prefix, n = stem, 0
    while prefix in text:
        n += 1
        prefix = f"{stem}Q{n}"
    return prefix


class Renderer:
    """A reusable Markdown converter (building one is slow; ``convert`` resets it)."""

    def __init__(self) -> None:
        self._md, self._media = self._new_markdown()

    @staticmethod
    def _new_markdown() -> tuple[markdown.Markdown, _Media]:
        from deckgen.render.converter import new_markdown  # imported on first use: see converter.py

        return new_markdown()  # sounds are resolved while Markdown runs (``_Media``), images by the sanitizer

    def convert(
        self, text: str, resolve: Callable[[str], str] | None = None, *, inline: bool = False
    ) -> tuple[str, list[str], list[tuple[str, MediaError]]]:
        """Markdown → HTML; returns (html, media names used, image and sound errors).

        Every ``<img>`` — Markdown or raw HTML — is resolved through ``resolve`` to its media name;
        ``![](x.mp3)`` and ``[sound:x.mp3]`` become Anki's ``[sound:...]`` with the sound's media name.
        """
        media: list[str] = []
        errors: list[tuple[str, MediaError]] = []

        def rewrite_src(src: str) -> str | None:
            if resolve is None or urlsplit(src).scheme in ("http", "https"):
                return src
            try:
                name = resolve(unquote(src))
            except MediaError as exc:
                errors.append((src, exc))
                return src
            media.append(name)
            return name

        self._md.reset()
        self._media.resolve, self._media.errors, self._media.media = resolve, errors, media
        pipe = free_prefix(text, "DGPIPE") + "X"
        if nesting_depth(text) > MAX_NESTING or too_dense(text):  # the source check reports these
            raw = "<pre>" + html.escape(text) + "</pre>"
        else:
            try:
                raw = self._md.convert(protect_table_pipes(text, pipe))
            except RecursionError:  # a nesting the source check does not know: report it here
                self._md, self._media = self._new_markdown()
                errors.append(("", MediaError("Markdown nested too deeply to render", rule="nesting-too-deep")))
                raw = "<pre>" + html.escape(text) + "</pre>"
        out = (sanitize(raw, rewrite_src) if needs_sanitizer(raw) else raw).replace(pipe, "|")
        if inline and out.startswith("<p>") and out.endswith("</p>") and out.count("<p>") == 1:
            out = out[3:-4]
        return neutralise_braces(out), media, errors


_INLINE_MATH_RE = re.compile(r"\$\$.+?\$\$|(?<![\\$])\$[^$\n]+?\$|\\\(.+?\\\)")


def protect_table_pipes(text: str, token: str) -> str:
    """Hide ``|`` inside inline math on table-like lines, so table cells are not split inside a formula.

    Python-Markdown splits table rows on ``|`` before math is recognised; ``$|w|$`` in a cell would
    otherwise lose half its formula. ``\\|`` is no way out: in LaTeX it means a double bar.
    """
    if "|" not in text:
        return text
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if line.count("|") >= 2:
            lines[i] = _INLINE_MATH_RE.sub(lambda m: m.group(0).replace("|", token), line)
    return "\n".join(lines)


def neutralise_braces(text: str) -> str:
    """``{{`` and ``}}`` as HTML entities: displayed the same, never read as Anki syntax."""
    return text.replace("{{", "{&#123;").replace("}}", "}&#125;")


def protect_cloze(text: str) -> tuple[str, set[int]]:
    """Swap cloze markers for placeholders Markdown leaves alone; returns the deletion numbers.

    The placeholders' prefix never occurs in ``text`` (``free_prefix``); ``restore_cloze`` needs the
    same ``text`` to find it again.
    """
    prefix = free_prefix(text, "DGCLOZE")
    out, depth, pos, numbers = [], 0, 0, set()
    token = re.compile(r"\{\{c(\d+)::|\}\}")
    for m in token.finditer(text):
        out.append(text[pos : m.start()])
        if m.group(1) is not None:
            depth += 1
            numbers.add(int(m.group(1)))
            out.append(f"{prefix}O{m.group(1)}X")
        elif depth:
            depth -= 1
            out.append(f"{prefix}C")
        else:
            out.append(m.group(0))
        pos = m.end()
    out.append(text[pos:])
    return "".join(out), numbers


def restore_cloze(text: str, source: str) -> str:
    """Cloze markers back in ``text``, rendered from ``protect_cloze(source)``."""
    prefix = re.escape(free_prefix(source, "DGCLOZE"))
    return re.sub(prefix + r"(?:O(\d+)X|C)", lambda m: f"{{{{c{m.group(1)}::" if m.group(1) else "}}", text)


@dataclass(frozen=True, slots=True)
class RenderedNote:
    """A note ready for packaging: its notetype, field values, tags and where it goes."""

    note: Note
    deck: str
    notetype: notetypes.NoteType
    fields: tuple[str, ...]
    tags: tuple[str, ...]
    card_ords: tuple[int, ...]
    media: tuple[str, ...]


def note_cards(note: Note) -> tuple[notetypes.NoteType, tuple[int, ...]]:
    """The note's notetype and the ords of the cards it makes (known without rendering)."""
    if note.cloze:
        return notetypes.cloze(), tuple(sorted(n - 1 for n in protect_cloze(note.answer.text)[1] if n > 0))
    return notetypes.basic(), (0, 1) if note.reverse else (0,)


_UNSPOKEN_RE = re.compile(
    r'<(pre|code)\b.*?</\1>|<span class="arithmatex">.*?</span>|<div class="arithmatex">.*?</div>|\[sound:[^\]]*\]',
    re.S,
)


def tts_tag(options: str, field_html: str) -> str:
    """Anki's text-to-speech tag for a rendered field: Anki reads the text aloud and shows a play button.

    Written into the field itself, not the template: the notetype schema stays frozen and each note
    (or file) picks its own language. Code, math and sounds are not read; entities stay escaped.
    """
    spoken = re.sub(r"<br\s*/?>|</(?:p|li|div|h\d|td|th|dt|dd|summary)>", " ", _UNSPOKEN_RE.sub(" ", field_html))
    spoken = re.sub(r"<[^>]+>", "", spoken)
    spoken = " ".join(spoken.replace("[", "(").replace("]", ")").split())
    return f"[anki:tts {options}]{spoken}[/anki:tts]" if spoken else ""


def note_tags(category: Category, note: Note) -> tuple[str, ...]:
    """Category, kind and author tags; Anki compares tags case-insensitively, so dedupe that way."""
    seen: dict[str, str] = {}
    for tag in (category.tag, f"kind::{note.kind.value}", *category.tags, *note.tags):
        seen.setdefault(tag.casefold(), tag)
    return tuple(sorted(seen.values(), key=str.casefold))


def render_note(
    renderer: Renderer, deck: Deck, category: Category, note: Note, resolve: ImageResolver
) -> tuple[RenderedNote, list[Diagnostic]]:
    """Render one note's fields; image problems come back as diagnostics at their source line."""
    path = note.location.path
    problems: list[Diagnostic] = []
    media: list[str] = []

    def field(body: Body | None, inline: bool = False) -> str:
        if body is None or not body.text:
            return ""
        text, numbers = protect_cloze(body.text) if note.cloze else (body.text, set())
        out, used, errors = renderer.convert(text, lambda src: resolve(path, src), inline=inline)
        media.extend(used)
        for src, exc in errors:
            offset = max(body.text.find(src), 0)
            problems.append(Diagnostic(body.location(path, offset), exc.rule, str(exc), exc.hint))
        return restore_cloze(out, body.text) if numbers else out

    prompt = field(Body(note.prompt, note.location.line), inline=True)
    answer = field(note.answer)
    if note.tts:
        prompt += tts_tag(note.tts, prompt)
        if not note.cloze:  # a cloze text read aloud would give its gaps away on the front
            answer += tts_tag(note.tts, answer)
    extra = field(note.extra)
    source = html.escape(note.source)
    kind = note.kind.label
    if note.cloze:
        values = {"Text": answer, "Prompt": prompt, "Extra": extra, "Source": source, "Kind": kind, "Id": note.id}
    else:
        values = {
            "Prompt": prompt,
            "Answer": answer,
            "Extra": extra,
            "Source": source,
            "Kind": kind,
            "Reverse": "y" if note.reverse else "",
            "TypeIn": html.escape(note.type_in),
            "Id": note.id,
        }
    notetype, ords = note_cards(note)
    fields = tuple(values.get(name, "") for name in notetype.fields)
    rendered = RenderedNote(
        note=note,
        deck=deck.subdeck_name(category),
        notetype=notetype,
        fields=fields,
        tags=note_tags(category, note),
        card_ords=ords,
        media=tuple(sorted(set(media))),
    )
    return rendered, problems


# Fields holding rendered Markdown (HTML); every other field holds escaped plain text.
HTML_FIELDS = frozenset({"Prompt", "Answer", "Extra", "Text"})


def safe_html(value: str, *, cloze: bool = False) -> str:
    """The last pass over rendered HTML before it leaves deckgen, whatever produced it (renderer or cache).

    The same for the renderer's own output; a forged or stale cache entry loses anything unsafe. HTML
    that ``is_clean`` proves safe (nearly all the renderer writes) is kept as it is; the rest is
    sanitised again.
    """
    clean = value if is_clean(value) else sanitize(value)
    if not cloze:
        return neutralise_braces(clean)
    protected, _ = protect_cloze(clean)
    return restore_cloze(neutralise_braces(protected), clean)


_ESCAPED = re.compile("[&<>\"']")  # plain text without these is its own escaped form


def safe_fields(notetype: notetypes.NoteType, fields: tuple[str, ...]) -> tuple[str, ...]:
    """Every field of a note of ``notetype`` passed through ``safe_html`` (HTML fields) or re-escaped
    (plain-text fields)."""
    return tuple(
        [  # (a list first: faster than a generator, for every field of every cached note)
            safe_html(value, cloze=notetype.is_cloze and name == "Text")
            if name in HTML_FIELDS
            else (html.escape(html.unescape(value)) if _ESCAPED.search(value) else value)
            for name, value in zip(notetype.fields, fields, strict=True)
        ]
    )


def safe_note(rn: RenderedNote) -> RenderedNote:
    """``rn`` with its fields made safe (``safe_fields``): ``rn`` itself when that changes nothing."""
    values = safe_fields(rn.notetype, rn.fields)
    return rn if values == rn.fields else replace(rn, fields=values)


def render_intro(renderer: Renderer, category: Category) -> str:
    """The category's intro text, used as the subdeck's description."""
    return renderer.convert(category.intro)[0] if category.intro else ""
