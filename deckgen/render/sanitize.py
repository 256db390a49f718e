"""What HTML a card may hold, and the allowlist sanitizer that enforces it on every field deckgen writes.

The source checks (``sources/markup.py``) read the same policy to name, at its source line, every
element or attribute this sanitizer would remove; the sanitizer is the safety net behind them.
"""

from __future__ import annotations

import re
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


# --- proof that a fragment is already clean ---------------------------------------------------------
# Every field leaves deckgen through the sanitizer, HTML read back from the build cache included. That
# HTML is almost always the sanitizer's own earlier output, and nh3 reads it at ~10 MB/s; ``is_clean``
# instead tries to *prove*, with two linear regex passes, that a fragment holds nothing the sanitizer
# would act on. What it cannot prove goes through nh3 as before. The proof is deliberately narrow:
# - every ``<`` starts an allowlisted element's tag, written in lower case with double-quoted
#   attributes holding no ``<`` or ``>`` (so text is inert and tags are exactly ``<[^>]*>``);
# - every attribute is allowlisted for its element; URL attributes (href, src) hold no entity and
#   either an allowed scheme or no colon at all; an id is plain ASCII and not reserved; a style is one
#   ``text-align`` declaration; no comment, doctype or raw-text element can match;
# - elements nest and close within the fragment (void elements aside): nothing spills out of a field.
_WS = "[ \t\n\f\r]"
_VOID = ("br", "hr", "img", "col")
_VALUE = '"[^"<>]*+"'
# A URL with an allowed scheme, or one that cannot have a scheme: it starts with # / ? . or holds no colon.
_URL = '"(?:(?:https?|mailto):|[#/?.]|(?=[^:"]*+"))[^"<>&\\s\\x00-\\x1f\\x7f]*+"'
_ID = '"(?!(?i:{ws}*+(?:{ids}){ws}*+"))[A-Za-z0-9_.:-]*+"'.format(
    ws=_WS, ids="|".join(sorted(map(re.escape, RESERVED_IDS)))
)
_STYLE = '"(?:text-align: ?(?:left|right|center|justify);?)?"'
_SPECIAL = {"href": _URL, "src": _URL, "id": _ID, "style": _STYLE}


def _tags_pattern(tags: list[str]) -> str:
    """Start tags of ``tags``, which share one attribute allowlist and voidness."""
    names = sorted(ALLOWED_ATTRIBUTES["*"] | ALLOWED_ATTRIBUTES.get(tags[0], frozenset()))
    plain = "|".join(n for n in names if n not in _SPECIAL)
    attrs = "|".join([f"(?:{plain})={_VALUE}"] + [f"{n}={_SPECIAL[n]}" for n in names if n in _SPECIAL])
    end = f"{_WS}*+/?>" if tags[0] in _VOID else f"{_WS}*+>"
    return f"(?:{'|'.join(tags)})(?=[ \\t\\n\\f\\r/>])(?:{_WS}++(?:{attrs}))*+{end}"


def _start_tags() -> str:
    groups: dict[tuple[frozenset[str], bool], list[str]] = {}
    for tag in sorted(ALLOWED_TAGS):
        groups.setdefault((ALLOWED_ATTRIBUTES.get(tag, frozenset()), tag in _VOID), []).append(tag)
    return "|".join(_tags_pattern(tags) for tags in groups.values())


_CONTAINERS = "|".join(sorted(ALLOWED_TAGS - set(_VOID), key=lambda t: (-len(t), t)))  # "b" must not cut "br"
_GRAMMAR = re.compile(
    # End tags and classed spans first: they are most of the tags in highlighted code.
    f'[^<]*+(?:<(?:/(?:{_CONTAINERS}){_WS}*+>|span class="[^"<>]*+">|{_start_tags()})[^<]*+)*+'
)
_VOID_TAG = re.compile("<(?:{})[^>]*+>".format("|".join(_VOID)))
_MAX_DEPTH = 32
_INNERMOST = re.compile(f"<([a-z][a-z0-9]*+)[^>]*+>[^<]*+</\\1{_WS}*+>")


def is_clean(fragment: str) -> bool:
    """True only if ``fragment`` provably holds nothing the sanitizer would remove (see above)."""
    if "<" not in fragment:
        return True
    if _GRAMMAR.fullmatch(fragment) is None:
        return False
    rest = _VOID_TAG.sub("", fragment)
    for _ in range(_MAX_DEPTH):  # take away innermost elements until none is left: the rest is unbalanced
        rest, found = _INNERMOST.subn("", rest)
        if not found:
            return "<" not in rest
    return False  # nested deeper than any rendered note: proof left to nh3 (a pass each level is quadratic)


# What nh3 rewrites in HTML that ``is_clean`` accepts: self-closing slashes (``<br />`` → ``<br>``),
# entities other than &amp; &lt; &gt; (decoded), no-break spaces (``&nbsp;``), control characters, the
# newline that opens a <pre>, a block element inside a paragraph (the HTML parser ends the paragraph
# there), table parts (dropped outside a table, moved inside one), a table (text right inside one is
# moved before it) — and images, whose src only the sanitizer's callback resolves to a media name.
_ENDS_P = f"(?:blockquote|d[dlt]|details|div|figcaption|figure|h[1-6]|hr|li|ol|p|pre|summary|table|ul)(?={_WS}|/|>)"
_REWRITTEN = re.compile(
    "/>|<img|&(?!(?:amp|lt|gt);)|[\x00-\x08\x0b-\x1f\x7f\xa0]|<pre[^>]*+>\n"
    "|<(?:t[dhr]|table|tbody|thead|tfoot|col|caption)"
    f"|<p(?={_WS}|>)(?:[^<]++|<(?!/p>|{_ENDS_P}))*+<{_ENDS_P}"
    # An element the parser ends when one of its kind starts inside it (nested lists aside).
    + "".join(
        f"|<{tag}(?={_WS}|>)(?:[^<]++|<(?!/?{tag}(?={_WS}|>){keep}))*+<{tag}(?={_WS}|>)"
        for tag, keep in [("li", "|[uo]l"), ("d[dt]", "|dl"), ("a", ""), ("h[1-6]", ""), ("r[tp]", "")]
    )
)


def needs_sanitizer(fragment: str) -> bool:
    """False when ``fragment`` is proven clean (``is_clean``: as safe as the safety net lets through)
    and holds nothing nh3 would rewrite, so ``sanitize`` would give it back unchanged (tested on every
    corpus and on generated Markdown): the renderer then keeps its own output and skips nh3."""
    return _REWRITTEN.search(fragment) is not None or not is_clean(fragment)
