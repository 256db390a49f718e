"""Code blocks are highlighted with Pygments lexers and formatters reused from block to block
(``render/converter.py``): the HTML must be exactly what a fresh lexer and formatter per block give."""

from __future__ import annotations

import sys
from pathlib import Path

import pymdownx.highlight as highlight
import pytest

from deckgen.render import converter
from deckgen.render.markdown import Renderer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from synth import generate  # noqa: E402

_NAMES = ("get_lexer_by_name", "BlockHtmlFormatter", "InlineHtmlFormatter")

# Fences with every option that changes the lexer or the formatter, twice each (the second one reuses).
_FENCES = [
    "```python\ndef f(x):\n    return x * 2\n```",
    '```python hl_lines="2"\ndef f(x):\n    return x * 2\n```',
    '```python linenums="3"\na = 1\nb = 2\n```',
    '```python title="model.py"\na = 1\n```',
    '```sql title="query.sql" hl_lines="1 2"\nSELECT *\nFROM t\n```',
    "```bash\nset -eu\necho $HOME\n```",
    "```javascript\nconst x = () => 1;\n```",
    "```no-such-language\nplain <text> & more\n```",
    "```\nno language at all\n```",
    "```text\n\n\nleading and trailing newlines\n\n```",
    "Inline `#!python lambda x: x` code.",
]


def _texts(tmp_path: Path) -> list[str]:
    generate(tmp_path / "deck", 300, seed=11)
    files = [
        *(ROOT / "source").rglob("*.md"),
        *(ROOT / "tests" / "data").rglob("*.md"),
        *(tmp_path / "deck").rglob("*.md"),
    ]
    texts = [f.read_text(encoding="utf-8", errors="replace") for f in sorted(files)]
    return [t for t in texts if "```" in t] + _FENCES + _FENCES


def _html(texts: list[str]) -> list[str]:
    md = Renderer()._md
    return [md.reset().convert(text) for text in texts]


def test_reused_lexers_and_formatters_write_the_same_html(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    texts = _texts(tmp_path)
    assert len(texts) > 40
    converter._reused.clear()
    reused = _html(texts)
    assert len(converter._reused) >= 8  # lexers and formatters were kept, and so were reused
    for name in _NAMES:  # back to what pymdownx calls without deckgen: a new object for every block
        monkeypatch.setattr(highlight, name, getattr(highlight, name).args[0])
    fresh = _html(texts)
    assert sum("highlight" in html for html in fresh) > 40
    for text, a, b in zip(texts, reused, fresh, strict=True):
        assert a == b, text[:200]


def test_only_pymdownx_highlight_is_changed() -> None:
    """The originals stay where other code finds them: Pygments' own look-up is untouched."""
    import pygments.lexers

    Renderer()
    assert all(getattr(highlight, name).func is converter._reused_object for name in _NAMES)
    assert pygments.lexers.get_lexer_by_name is highlight.get_lexer_by_name.args[0]  # type: ignore[attr-defined]
