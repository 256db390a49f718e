"""What HTML a card may hold, and the allowlist sanitizer that enforces it on every field deckgen writes.

The source checks (``sources/markup.py``) read the same policy to name, at its source line, every
element or attribute this sanitizer would remove; the sanitizer is the safety net behind them.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar

import nh3

ALLOWED_TAGS = frozenset(
    {
        *("p", "br", "hr", "strong", "em", "b", "i", "u", "s", "del", "ins", "mark", "sub", "sup", "small"),
        *("code", "pre", "kbd", "samp", "var", "span", "div", "blockquote", "ul", "ol", "li", "dl", "dt", "dd"),
        *("table", "thead", "tbody", "tfoot", "tr", "th", "td", "caption", "colgroup", "col", "img", "a"),
        *("abbr", "details", "summary", "figure", "figcaption", "h1", "h2", "h3", "h4", "h5", "h6", "q", "cite"),
        *("ruby", "rt", "rp", "bdi", "bdo"),
    }
)
ALLOWED_ATTRIBUTES: dict[str, frozenset[str]] = {
    "*": frozenset({"class", "title", "lang", "dir", "id"}),
    "a": frozenset({"href"}),
    "img": frozenset({"src", "alt", "width", "height"}),
    "th": frozenset({"align", "style", "colspan", "rowspan"}),
    "td": frozenset({"align", "style", "colspan", "rowspan"}),
    "ol": frozenset({"start", "type"}),
    "col": frozenset({"span"}),
}
URL_SCHEMES = frozenset({"http", "https", "mailto"})
STYLE_PROPERTIES = frozenset({"text-align"})
# Ids of the elements Anki's reviewers (desktop, AnkiMobile, AnkiDroid) build the card page around:
# a card element with one of them would take its place (a fake type-in box, a hidden answer line).
RESERVED_IDS = frozenset({"qa", "typeans", "answer", "_flag", "_mark", "qa_box", "content", "night", "typeanswer"})

# Part of the render cache's salt: a change here must not be served from old cached HTML.
POLICY = repr(
    (
        sorted(ALLOWED_TAGS),
        sorted((k, sorted(v)) for k, v in ALLOWED_ATTRIBUTES.items()),
        sorted(URL_SCHEMES),
        sorted(STYLE_PROPERTIES),
        sorted(RESERVED_IDS),
    )
)


def allowed_attribute(tag: str, attribute: str) -> bool:
    return attribute in ALLOWED_ATTRIBUTES["*"] or attribute in ALLOWED_ATTRIBUTES.get(tag, ())


def is_reserved_id(value: str) -> bool:
    return value.strip().casefold() in RESERVED_IDS


# Rewrites an <img src> (already checked against URL_SCHEMES) to its media name; None drops it.
SrcRewriter = Callable[[str], "str | None"]

# The rewriter of the ``sanitize`` call in progress: the cleaner is built once (building one per call
# is most of the cost), and its attribute callback finds the call's rewriter here.
_rewrite_src: ContextVar[SrcRewriter | None] = ContextVar("rewrite_src", default=None)


def _attribute_filter(tag: str, attribute: str, value: str) -> str | None:
    if attribute == "id" and is_reserved_id(value):
        return None
    if tag == "img" and attribute == "src":
        rewrite = _rewrite_src.get()
        if rewrite is not None:
            return rewrite(value)
    return value


_CLEANER = nh3.Cleaner(
    tags=set(ALLOWED_TAGS),
    attributes={k: set(v) for k, v in ALLOWED_ATTRIBUTES.items()},
    url_schemes=set(URL_SCHEMES),
    link_rel=None,
    strip_comments=True,
    filter_style_properties=set(STYLE_PROPERTIES),
    attribute_filter=_attribute_filter,
)


def sanitize(fragment: str, rewrite_src: SrcRewriter | None = None) -> str:
    """Allowlist sanitizer: whatever the HTML held, no script, handler, javascript: URL or Anki id survives.

    ``rewrite_src`` sees every surviving ``<img src>`` (entity-decoded), raw HTML and Markdown
    images alike, and returns the value to keep.
    """
    token = _rewrite_src.set(rewrite_src)
    try:
        return _CLEANER.clean(fragment)
    finally:
        _rewrite_src.reset(token)
