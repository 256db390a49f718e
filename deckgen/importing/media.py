"""Images and sounds a Markdown Q&A list references beside itself: copied along, references rewritten."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from deckgen.errors import Diagnostic, Severity
from deckgen.render.markdown import AUDIO_TYPES

from .model import ImportedCategory, ImportedNote

_MD_REF_RE = re.compile(r"(!\[[^\]\n]*\]\()(<[^>\n]+>|[^)\s]+)((?:\s+\"[^\"\n]*\")?\))")
_HTML_REF_RE = re.compile(r"(<img\b[^>]*?\ssrc=)([\"'])([^\"'>]+)\2", re.I)


def copy_local_media(categories: list[ImportedCategory], base: Path) -> tuple[list[ImportedCategory], list[Diagnostic]]:
    """Give each category the local files its notes reference (relative to ``base``, the input's
    folder) under ``images/`` or ``sounds/``, rewriting the references to match. Web addresses are
    left alone; a missing file is reported and its reference kept, so ``check`` points at it too."""
    collector = _Collector(base)
    out = []
    for category in categories:
        collector.media = dict(category.media)
        notes = tuple(
            replace(
                n,
                prompt=collector.rewrite(n.prompt, n),
                answer=collector.rewrite(n.answer, n),
                extra=collector.rewrite(n.extra, n),
            )
            for n in category.notes
        )
        out.append(replace(category, notes=notes, media=collector.media))
    return out, collector.problems


class _Collector:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.problems: list[Diagnostic] = []
        self.media: dict[str, bytes] = {}  # of the category being rewritten
        self._names: dict[Path, str] = {}  # real file → path relative to the source folder
        self._taken: set[str] = set()

    def rewrite(self, text: str, note: ImportedNote) -> str:
        def md(m: re.Match[str]) -> str:
            new = self._local(m.group(2), note)
            return m.group(0) if new is None else m.group(1) + quote(new) + m.group(3)

        def tag(m: re.Match[str]) -> str:
            new = self._local(m.group(3), note)
            return m.group(0) if new is None else f"{m.group(1)}{m.group(2)}{quote(new)}{m.group(2)}"

        return _HTML_REF_RE.sub(tag, _MD_REF_RE.sub(md, text))

    def _local(self, ref: str, note: ImportedNote) -> str | None:
        target = unquote(ref.strip("<>"))
        if urlsplit(target).scheme or target.startswith("/"):
            return None
        real = (self.base / target).resolve()
        if real not in self._names:
            if not real.is_file():
                self.problems.append(
                    Diagnostic(
                        note.location,
                        "import-media-missing",
                        f"{target!r} not found beside the input; reference kept",
                        f"copy the file into the source folder and fix the path ({real})",
                        Severity.WARNING,
                    )
                )
                return None
            folder = "sounds" if real.suffix.lower() in AUDIO_TYPES else "images"
            self._names[real] = _free_name(folder, real.name, self._taken)
        self.media[self._names[real]] = real.read_bytes()
        return self._names[real]


def _free_name(folder: str, name: str, taken: set[str]) -> str:
    stem, suffix = Path(name).stem, Path(name).suffix
    candidate, n = f"{folder}/{name}", 2
    while candidate in taken:
        candidate, n = f"{folder}/{stem}-{n}{suffix}", n + 1
    taken.add(candidate)
    return candidate
