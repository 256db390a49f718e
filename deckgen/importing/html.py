"""Anki field HTML → readable Markdown in deckgen's dialect (markdownify does the HTML).

What Markdown would mangle is set aside first and put back verbatim: MathJax ``\\(..\\)`` and
``\\[..\\]`` (markdownify would escape ``_`` and ``*`` inside), ``[sound:..]`` tags, and literal
``$`` (which deckgen reads as math). Images and sounds are renamed to the paths the category file
will reference; the caller copies the files.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import quote, unquote

from bs4 import BeautifulSoup
from bs4.element import NavigableString, Tag
from markdownify import MarkdownConverter

_MATH_RE = re.compile(r"\\\((.+?)\\\)|\\\[(.+?)\\\]", re.S)
_SOUND_RE = re.compile(r"\[sound:([^\]]+)\]")
_TOKEN = "DGKEEP{}X"
_TOKEN_RE = re.compile(r"DGKEEP(\d+)X")
_DOLLAR = "DGDOLLARX"


class _Converter(MarkdownConverter):  # type: ignore[misc]
    """markdownify, keeping ``<details>``/``<summary>`` as HTML (deckgen renders Markdown inside them)."""

    def convert_details(self, el: Tag, text: str, parent_tags: set[str]) -> str:
        return f"\n\n<details>\n{text.strip()}\n</details>\n\n"

    def convert_summary(self, el: Tag, text: str, parent_tags: set[str]) -> str:
        return f"<summary>{' '.join(text.split())}</summary>\n\n"


@dataclass(slots=True)
class Converted:
    """A field as Markdown, and the media files (as named in Anki) it references."""

    markdown: str
    images: list[str] = field(default_factory=list)
    sounds: list[str] = field(default_factory=list)


def field_to_markdown(
    field_html: str, image_path: Callable[[str], str | None], sound_path: Callable[[str], str | None]
) -> Converted:
    """Convert one field. ``image_path``/``sound_path`` map an Anki media name to the reference to
    write, or to None for a file that cannot be had (the reference is then left out; they say so)."""
    kept: list[str] = []
    out = Converted("")

    def keep(text: str) -> str:
        kept.append(text)
        return _TOKEN.format(len(kept) - 1)

    def math(m: re.Match[str]) -> str:
        inner = html.unescape(re.sub(r"<br\s*/?>", "\n", m.group(0)))
        return keep(inner)

    def sound(m: re.Match[str]) -> str:
        name = html.unescape(m.group(1))
        out.sounds.append(name)
        path = sound_path(name)
        return keep(f"[sound:{path}]") if path else ""

    text = _MATH_RE.sub(math, field_html)
    text = _SOUND_RE.sub(sound, text)
    soup = BeautifulSoup(text, "html.parser")
    for img in soup.find_all("img"):
        src = str(img.get("src") or "")
        if src and not re.match(r"^[a-z]+:", src, re.I):
            name = unquote(src)
            out.images.append(name)
            path = image_path(name)
            if path:
                img["src"] = quote(path)
            else:
                img.decompose()
    for node in soup.find_all(string=True):
        if "$" in node and not node.find_parent(["code", "pre"]):
            node.replace_with(NavigableString(str(node).replace("$", _DOLLAR)))
    markdown = _Converter(
        heading_style="ATX",
        bullets="-",
        escape_misc=False,
        sup_symbol="<sup>",
        sub_symbol="<sub>",
        code_language_callback=_code_language,
    ).convert_soup(soup)
    markdown = markdown.replace(_DOLLAR, "\\$")
    markdown = _TOKEN_RE.sub(lambda m: kept[int(m.group(1))], markdown)
    lines = [line.rstrip() if not line.endswith("  ") or not line.strip() else line for line in markdown.split("\n")]
    out.markdown = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    return out


def _code_language(pre: Tag) -> str:
    """``<pre><code class="language-python">`` (highlight.js, Prism, most Markdown tools) → ``python``."""
    code = pre.find("code")
    classes = [*(pre.get_attribute_list("class")), *(code.get_attribute_list("class") if isinstance(code, Tag) else [])]
    for name in classes:
        if name and name.startswith(("language-", "lang-")):
            return str(name).split("-", 1)[1]
    return ""


def one_line(markdown: str) -> str:
    """Markdown for a heading: line breaks become ``<br>``, paragraphs are joined the same way."""
    parts = [p.strip() for p in re.split(r"\s*\n\s*", markdown.strip()) if p.strip()]
    return " <br> ".join(parts)
