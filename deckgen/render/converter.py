"""Python-Markdown configured for cards: deckgen's own extension (inline display math, sounds, Markdown
inside <details>, an inline stage that skips patterns a text cannot match) and ``new_markdown``.

Kept apart from ``render.markdown`` so that commands that render nothing (a fully cached ``check``)
never import Python-Markdown, its extensions and Pygments (~90 ms).
"""

from __future__ import annotations

import html
import importlib
import re
import xml.etree.ElementTree as etree
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import markdown
from markdown import util as markdown_util
from markdown.extensions import Extension
from markdown.inlinepatterns import InlineProcessor
from markdown.preprocessors import Preprocessor
from markdown.treeprocessors import InlineProcessor as StockInlineProcessor
from markdown.treeprocessors import Treeprocessor

from deckgen.render.markdown import AUDIO_TYPES, EXTENSION_CONFIGS, EXTENSIONS, MediaError

_INLINE_DISPLAY_RE = r"(?<!\\)(\$\$|\\\[)(.+?)(?:\$\$|\\\])"


class _InlineDisplayMath(InlineProcessor):
    """``$$..$$`` and ``\\[..\\]`` inside a paragraph (arithmatex only finds them as blocks)."""

    def handleMatch(self, m: re.Match[str], data: str) -> tuple[str, int, int]:  # type: ignore[override]
        if (m.group(1) == "$$") != m.group(0).endswith("$$"):
            return None, None, None  # type: ignore[return-value]
        math = "\\[" + html.escape(m.group(2), quote=False) + "\\]"
        stash = self.md.htmlStash.store(f'<span class="arithmatex">{math}</span>')
        return stash, m.start(0), m.end(0)


# Raw HTML blocks whose content is Markdown by default (``md_in_html`` alone needs markdown="1"):
# Q&A lists put answers in <details>, and raw ``**``/``$..$`` on a card is never what was meant.
# Other block tags stay opt-in: indented HTML inside a <div> would turn into a code block.
_MARKDOWN_INSIDE = {"details": "1", "summary": "span"}
_HTML_OPEN_RE = re.compile(r"<(details|summary)(?=[\s>])([^>]*)>", re.I)
_CODE_SPAN_RE = re.compile(r"(`+).+?\1")


class _MarkdownInsideHtml(Preprocessor):
    """Mark ``<details>``/``<summary>`` on HTML-block lines with ``markdown=...`` for md_in_html.

    Runs after fenced code is stashed, so tags in code blocks are never touched; tags inside
    inline code spans are skipped too. An author's own ``markdown="0"`` is respected.
    """

    def run(self, lines: list[str]) -> list[str]:
        return [self._mark(line) if line.lstrip().startswith("<") else line for line in lines]

    @staticmethod
    def _mark(line: str) -> str:
        spans = [m.span() for m in _CODE_SPAN_RE.finditer(line)]

        def add(m: re.Match[str]) -> str:
            if any(a <= m.start() < b for a, b in spans) or "markdown=" in m.group(2):
                return m.group(0)
            return f'<{m.group(1)}{m.group(2)} markdown="{_MARKDOWN_INSIDE[m.group(1).lower()]}">'

        return _HTML_OPEN_RE.sub(add, line)


_SOUND_RE = r"\[sound:([^\]\n]+)\]"


def _is_local(src: str) -> bool:
    return urlsplit(src).scheme not in ("http", "https", "data")


def _is_audio(src: str) -> bool:
    return Path(urlsplit(src).path).suffix.lower() in AUDIO_TYPES


class _Media:
    """What one conversion resolved: media names used and references that could not be resolved."""

    def __init__(self) -> None:
        self.resolve: Callable[[str], str] | None = None
        self.errors: list[tuple[str, MediaError]] = []
        self.media: list[str] = []

    def name(self, src: str) -> str | None:
        """The media name for ``src`` (as written), or None when it cannot be packaged."""
        if self.resolve is None:
            return None
        try:
            name = self.resolve(unquote(src))
        except MediaError as exc:
            self.errors.append((src, exc))
            return None
        self.media.append(name)
        return name


class _Sounds(Treeprocessor):
    """``![](x.mp3)`` becomes Anki's ``[sound:...]`` (images are resolved by the sanitizer's pass)."""

    def __init__(self, md: markdown.Markdown, state: _Media) -> None:
        super().__init__(md)
        self.state = state

    def run(self, root: etree.Element) -> None:
        sounds: list[tuple[etree.Element, etree.Element, str | None]] = []
        for parent in root.iter():
            for img in parent.findall("img"):
                src = img.get("src", "")
                if _is_local(src) and _is_audio(src):
                    sounds.append((parent, img, self.state.name(src)))
        for parent, img, name in sounds:  # one that cannot be packaged is reported once, here, and goes
            _replace_with_text(parent, img, f"[sound:{name}]" if name else "")


def _replace_with_text(parent: etree.Element, child: etree.Element, text: str) -> None:
    """Put ``text`` where ``child`` stands (as ``[sound:x]`` written in Markdown would be) and drop it."""
    text += child.tail or ""
    index = list(parent).index(child)
    if index:
        before = parent[index - 1]
        before.tail = (before.tail or "") + text
    else:
        parent.text = (parent.text or "") + text
    parent.remove(child)


class _Sound(InlineProcessor):
    """``[sound:file.mp3]`` written in Markdown: the file is packaged like an image."""

    def __init__(self, pattern: str, md: markdown.Markdown, state: _Media) -> None:
        super().__init__(pattern, md)
        self.state = state

    def handleMatch(self, m: re.Match[str], data: str) -> tuple[str, int, int]:  # type: ignore[override]
        src = m.group(1).strip()
        name = None
        if _is_local(src) and self.state.resolve is not None:
            if _is_audio(src):
                name = self.state.name(src)
            else:
                self.state.errors.append(
                    (src, MediaError(f"[sound:] of a non-audio file {src!r}", _AUDIO_HINT, rule="image-type"))
                )
        tag = f"[sound:{name}]" if name else m.group(0)
        return self.md.htmlStash.store(html.escape(tag, quote=False)), m.start(0), m.end(0)


_AUDIO_HINT = "sounds can be MP3, OGG, WAV, M4A, FLAC or Opus"


# For each inline pattern (by its registered name): characters one of which every text it can match
# holds. None of them occurs in Markdown's placeholders ("\x02klzzwxh:12\x03", "\x02wzxhzdk:3\x03"),
# which are all that patterns add to a text. Patterns not listed here (an empty set) are always tried.
_PATTERN_NEEDS: dict[str, str] = {
    "backtick": "`",
    "dg-display-math": "$\\",
    "arithmatex-inline": "$\\",
    "escape": "\\",
    "footnote": "[",
    "dg-sound": "[",
    "reference": "[",
    "link": "[",
    "image_link": "[",
    "image_reference": "[",
    "short_reference": "[",
    "short_image_ref": "[",
    "autolink": "<",
    "automail": "<",
    "linebreak": "\n",
    "html": "<",
    "entity": "&",
    "em_strong": "*_",
}


_NEEDED = frozenset("".join(_PATTERN_NEEDS.values()))


class _TriggeredInline(StockInlineProcessor):
    """Python-Markdown's inline stage, which hands a text only to patterns that could match it.

    The stock stage runs every pattern's regex over every text node: most of its time on prose with
    little markup. The output is the same (``test_render_inline_stage`` compares it with the stock stage
    on every corpus); only the loop below differs from ``InlineProcessor.__handleInline`` (Markdown is pinned).
    """

    def run(self, tree: etree.Element, ancestors: list[str] | None = None) -> etree.Element:
        registry = self.inlinePatterns
        self._patterns = list(registry)  # sorts the registry: its names below are in the same order
        self._needs = [frozenset(_PATTERN_NEEDS.get(name, "")) for name, _ in registry._priority]  # type: ignore[attr-defined]
        return super().run(tree, ancestors)

    def _InlineProcessor__handleInline(self, data: str, patternIndex: int = 0) -> str:
        if isinstance(data, markdown_util.AtomicString):
            return data
        patterns, needs = self._patterns, self._needs
        apply = self._InlineProcessor__applyPattern  # type: ignore[attr-defined]
        # Patterns only ever take characters away (placeholders hold none of these): what is present now
        # is all that can be present later in this text.
        present = {c for c in _NEEDED if c in data}
        start, count = 0, len(patterns)
        while patternIndex < count:
            need = needs[patternIndex]
            if need and need.isdisjoint(present):
                patternIndex, start = patternIndex + 1, 0
                continue
            data, matched, start = apply(patterns[patternIndex], data, patternIndex, start)
            if not matched:
                patternIndex += 1
        return data


class _DeckgenExtension(Extension):
    def __init__(self) -> None:
        super().__init__()
        self.media = _Media()

    def extendMarkdown(self, md: markdown.Markdown) -> None:
        md.inlinePatterns.register(_InlineDisplayMath(_INLINE_DISPLAY_RE, md), "dg-display-math", 189.95)
        md.inlinePatterns.register(_Sound(_SOUND_RE, md, self.media), "dg-sound", 175)
        md.treeprocessors.register(_Sounds(md, self.media), "dg-sounds", 1)
        md.preprocessors.register(_MarkdownInsideHtml(md), "dg-markdown-inside-html", 21)
        md.treeprocessors.register(_TriggeredInline(md), "inline", 20)


class _Markdown(markdown.Markdown):
    """Loads extensions named by module path straight from their module.

    Markdown first looks every name up among installed entry points, which imports
    importlib.metadata and reads every installed package's metadata: ~50 ms in each process
    that builds a converter, for names (``pymdownx.highlight``) that are module paths anyway.
    """

    def build_extension(self, ext_name: str, configs: Mapping[str, Any]) -> Extension:
        module = importlib.import_module(ext_name)
        extension: Extension = module.makeExtension(**configs)
        return extension


# pymdownx.highlight makes a new Pygments lexer and HTML formatter for every code block: the lexer
# look-up scans Pygments' plugin entry points and each formatter builds its style table, ~0.5 ms a
# block (over a second of a 10k-note deck's rendering). Both objects keep no state between uses
# (``pygments.highlight`` is meant to be called with the same ones again), so one of each per
# distinct set of options is kept and handed out again: the HTML is the same (tested).
_REUSED_MAX = 256  # distinct option sets kept (titles and highlighted lines vary per block)
_reused: dict[tuple[object, str], Any] = {}


def _reused_object(make: Callable[..., Any], *args: object, **options: Any) -> Any:
    key = (make, repr((args, sorted(options.items()))))  # (option values are str, int, bool, lists)
    found = _reused.get(key)
    if found is None:
        if len(_reused) >= _REUSED_MAX:
            _reused.clear()
        found = _reused[key] = make(*args, **options)
    return found


def _reuse_pygments_objects() -> None:
    import functools

    import pymdownx.highlight as highlight

    if getattr(highlight, "_deckgen_reused", False):
        return
    for name in ("get_lexer_by_name", "BlockHtmlFormatter", "InlineHtmlFormatter"):  # looked up at each use
        setattr(highlight, name, functools.partial(_reused_object, getattr(highlight, name)))
    highlight._deckgen_reused = True  # type: ignore[attr-defined]


def new_markdown() -> tuple[markdown.Markdown, _Media]:
    """A converter with deckgen's extensions, and the media state its sound patterns fill in."""
    _reuse_pygments_objects()
    extension = _DeckgenExtension()
    return _Markdown(extensions=[*EXTENSIONS, extension], extension_configs=EXTENSION_CONFIGS), extension.media
