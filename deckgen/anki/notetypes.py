"""The notetypes deckgen writes: fixed ids, fields, card templates and CSS.

Anki matches notetypes across imports by id *and* schema (field and template names). Changing
a field list or a template list here makes Anki create a "+" copy of the notetype on import and
refuse to update existing notes ever after; so the schema is frozen, spare fields exist from day
one, and a schema change needs a new model id (tests/test_notetypes.py guards this).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache

# --- Constants that must never change (users' collections depend on them) -----------------
BASIC_MODEL_ID = 1738425901  # "deckgen Basic": questions, tips and FAQs
CLOZE_MODEL_ID = 1738425902  # "deckgen Cloze": notes with {{c1::...}} deletions

BASIC_FIELDS = ("Prompt", "Answer", "Extra", "Source", "Kind", "Reverse", "TypeIn", "Id", "Spare")
CLOZE_FIELDS = ("Text", "Prompt", "Extra", "Source", "Kind", "Id", "Spare")

# Both themes keep every token at WCAG AA contrast (>= 4.5:1) on their own background;
# "friendly", the old choice, had comments at 2.6:1. tests/test_preview.py measures it in a browser.
PYGMENTS_LIGHT = "default"
PYGMENTS_DARK = "monokai"


@dataclass(frozen=True, slots=True)
class Template:
    name: str
    front: str
    back: str


@dataclass(frozen=True, slots=True)
class NoteType:
    id: int
    name: str
    fields: tuple[str, ...]
    templates: tuple[Template, ...]
    is_cloze: bool = False

    @property
    def css(self) -> str:
        """The stylesheet (both notetypes share it), made on first use: it needs Pygments' styles."""
        return card_css()

    @property
    def schema(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """What Anki compares to decide whether an incoming notetype is the same one."""
        return self.fields, tuple(t.name for t in self.templates)

    @property
    def style_hash(self) -> str:
        """Hash of everything users see; a change bumps the notetype's mod so Anki updates it."""
        h = hashlib.sha256(repr((self.name, self.schema, self.templates, self.css)).encode())
        return h.hexdigest()[:16]


_LABEL = '<div class="dg-label">{{Kind}}</div>'
_TAIL = (
    '{{#Extra}}<div class="dg-extra">{{Extra}}</div>{{/Extra}}\n'
    '{{#Source}}<div class="dg-source">{{Source}}</div>{{/Source}}\n'
)

_BASIC_FORWARD = Template(
    name="Forward",
    front=(
        '<div class="dg-card dg-kind-{{Kind}}">\n' + _LABEL + "\n"
        '<div class="dg-prompt">{{Prompt}}</div>\n'
        '{{#TypeIn}}<div class="dg-typein">{{type:TypeIn}}</div>{{/TypeIn}}\n</div>'
    ),
    back=(
        '{{FrontSide}}\n<hr id="answer">\n'
        '<div class="dg-card dg-kind-{{Kind}} dg-back">\n<div class="dg-answer">{{Answer}}</div>\n' + _TAIL + "</div>"
    ),
)
_BASIC_REVERSE = Template(
    name="Reverse",
    front=(
        "{{#Reverse}}"
        '<div class="dg-card dg-kind-{{Kind}} dg-reversed">\n' + _LABEL + "\n"
        '<div class="dg-answer">{{Answer}}</div>\n</div>'
        "{{/Reverse}}"
    ),
    back=(
        '{{FrontSide}}\n<hr id="answer">\n'
        '<div class="dg-card dg-kind-{{Kind}} dg-back">\n<div class="dg-prompt">{{Prompt}}</div>\n' + _TAIL + "</div>"
    ),
)
_CLOZE = Template(
    name="Cloze",
    front=(
        '<div class="dg-card dg-kind-{{Kind}} dg-cloze">\n' + _LABEL + "\n"
        '{{#Prompt}}<div class="dg-prompt">{{Prompt}}</div>{{/Prompt}}\n'
        '<div class="dg-answer">{{cloze:Text}}</div>\n</div>'
    ),
    back=(
        '<div class="dg-card dg-kind-{{Kind}} dg-cloze">\n' + _LABEL + "\n"
        '{{#Prompt}}<div class="dg-prompt">{{Prompt}}</div>{{/Prompt}}\n'
        '<div class="dg-answer">{{cloze:Text}}</div>\n</div>\n'
        '<div class="dg-card dg-kind-{{Kind}} dg-back">\n' + _TAIL + "</div>"
    ),
)


def _pygments_rules(style: str, scopes: tuple[str, ...]) -> str:
    """Class-based Pygments rules for one style, each selector prefixed by every scope."""
    from pygments.formatters import HtmlFormatter

    out = []
    for rule in HtmlFormatter(style=style).get_style_defs(".highlight").splitlines():  # type: ignore[no-untyped-call]
        if not rule.startswith(".highlight"):
            continue  # drops the bare `pre` and line-number rules, which are not scoped
        selector, _, body = rule.partition(" {")
        out.append(", ".join(f"{s} {selector}".strip() for s in scopes) + " {" + body)
    return "\n".join(out)


@cache
def card_css() -> str:
    """The stylesheet shared by both notetypes: base CSS plus light and night Pygments themes."""
    from importlib import resources  # ~10 ms, for the commands that write a notetype only

    base = resources.files("deckgen").joinpath("data/cards.css").read_text(encoding="utf-8")
    light = _pygments_rules(PYGMENTS_LIGHT, ("",))
    dark = _pygments_rules(PYGMENTS_DARK, (".nightMode", ".night_mode"))
    return f"{base}\n/* Pygments {PYGMENTS_LIGHT} (light) */\n{light}\n/* Pygments {PYGMENTS_DARK} (night) */\n{dark}\n"


@cache
def basic() -> NoteType:
    return NoteType(BASIC_MODEL_ID, "deckgen Basic", BASIC_FIELDS, (_BASIC_FORWARD, _BASIC_REVERSE))


@cache
def cloze() -> NoteType:
    return NoteType(CLOZE_MODEL_ID, "deckgen Cloze", CLOZE_FIELDS, (_CLOZE,), is_cloze=True)


def all_notetypes() -> tuple[NoteType, ...]:
    return (basic(), cloze())


@cache
def by_id() -> dict[int, NoteType]:
    return {t.id: t for t in all_notetypes()}
