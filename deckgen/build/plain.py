"""The source model as plain JSON values and back, for the build cache.

A note's fields are read by one ``attrgetter`` and written as a list; line numbers are relative to a base
line (a note's heading for its render and lint entries, so a note that moves keeps them; 0 for a parsed
file), and paths are left out where they are the file's own. Reading back checks every value's type
against the field's annotation: a cache entry of the wrong shape is a miss (``None``), never a model
object holding something the parser could not have made.
"""

from __future__ import annotations

import hashlib
import operator
from collections.abc import Callable, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any, TypeVar

from deckgen.errors import Diagnostic, Severity
from deckgen.sources.model import NOTE_CLASSES, Body, Category, Kind, Note, SourceLocation

_CLASSES = {cls.__name__: cls for cls in NOTE_CLASSES.values()}
_Layout = tuple[Callable[[Note], tuple[Any, ...]], tuple[str, ...]]
_LAYOUTS: dict[type[Note], _Layout] = {}


def _layout(cls: type[Note]) -> _Layout:
    """A getter for all of a note class's fields, and each field's kind (its annotation)."""
    layout = _LAYOUTS.get(cls)
    if layout is None:
        found = fields(cls)
        kinds = tuple(str(f.type) for f in found)
        unknown = [f.name for f, kind in zip(found, kinds, strict=True) if kind not in _READ]
        if unknown:
            raise TypeError(f"{cls.__name__} fields {unknown} have a type the build cache cannot store")
        layout = _LAYOUTS[cls] = (operator.attrgetter(*(f.name for f in found)), kinds)
    return layout


def _note_values(note: Note, base: int) -> list[Any]:
    getter, kinds = _layout(type(note))
    values = list(getter(note))
    for i, kind in enumerate(kinds):
        value = values[i]
        if value is None:
            continue
        if kind[0] == "B":  # Body
            values[i] = [value.line - base, value.text]
        elif kind[0] == "S":  # SourceLocation
            values[i] = [value.line - base, value.col]
        elif kind[0] == "f":  # a set's order follows string hashing, which differs per process
            values[i] = sorted(value)
        elif kind[0] == "t":
            values[i] = list(value)
    return values


def note_text(note: Note) -> str:
    """The note as text that no other note shares, its lines relative to its heading (a cache key)."""
    return repr((type(note).__name__, note.location.path.as_posix(), *_note_values(note, note.location.line)))


def note_digest(note: Note) -> bytes:
    """A short hash of ``note_text``: what a note's cache entries are keyed by."""
    return hashlib.blake2b(note_text(note).encode("utf-8", "surrogatepass"), digest_size=16).digest()


def note_plain(note: Note) -> list[Any]:
    """The note as JSON values (lines as they are; its path is its file's)."""
    return [type(note).__name__, *_note_values(note, 0)]


def note_from_plain(value: Any, path: Path) -> Note | None:
    """The note ``note_plain`` wrote for a file at ``path``, or None if ``value`` is not one."""
    if type(value) is not list or not value or type(value[0]) is not str or value[0] not in _CLASSES:
        return None
    return _reader(_CLASSES[value[0]])(value, path)


_READERS: dict[type[Note], Callable[[list[Any], Path], Note | None]] = {}
T = TypeVar("T")
_MAKERS: dict[type, Callable[..., Any]] = {}  # (one per class: every note class's reader makes Body, SourceLocation)


def maker(cls: type[T]) -> Callable[..., T]:
    """``cls(*values)``, every field given in order, for a frozen slotted dataclass whose ``__init__`` only
    sets its fields: each slot set directly, not through the frozen ``__setattr__`` (2x faster; a warm
    build restores every note, and its render, from plain values). The object is the same, still frozen."""
    known = _MAKERS.get(cls)
    if known is not None:
        return known
    found = fields(cls)  # type: ignore[arg-type]
    if "__post_init__" in dir(cls) or not all(f.init for f in found):
        raise TypeError(f"{cls.__name__}.__init__ does more than set its fields")
    slots = {f"_set_{f.name}": getattr(cls, f.name).__set__ for f in found}  # (its member descriptors)
    names = [f.name for f in found]
    source = f"def make({', '.join(names)}):\n    o = _new(cls)\n"
    source += "".join(f"    _set_{n}(o, {n})\n" for n in names) + "    return o\n"
    scope: dict[str, Any] = {"_new": object.__new__, "cls": cls, **slots}
    exec(source, scope)  # (made of the class's field names only, never of data)
    make: Callable[..., T] = scope["make"]
    _MAKERS[cls] = make
    return make


# How ``_reader`` checks and builds each kind of field from its JSON value ``v`` (``{v}``), by annotation.
# (Exact types: JSON gives no subclasses, and a bool must not pass for an int.)
_BODY = "(type({v}) is list and len({v}) == 2 and type({v}[0]) is int and type({v}[1]) is str)"  # [line, text]
_PLACE = "(type({v}) is list and len({v}) == 2 and type({v}[0]) is int and type({v}[1]) is int)"  # [line, col]
_STRS = "(type({v}) is list and (not {v} or set(map(type, {v})) == _STR))"
_READ: dict[str, tuple[str, str]] = {  # annotation -> (check, value)
    "str": ("type({v}) is str", "{v}"),
    "bool": ("type({v}) is bool", "{v}"),
    "tuple[str, ...]": (_STRS, "tuple({v})"),
    "frozenset[str]": (_STRS, "frozenset({v})"),
    "Body": (_BODY, "_body({v}[1], {v}[0])"),
    "Body | None": (f"({{v}} is None or {_BODY})", "None if {v} is None else _body({v}[1], {v}[0])"),
    "SourceLocation": (_PLACE, "_place(path, {v}[0], {v}[1])"),
    "SourceLocation | None": (
        f"({{v}} is None or {_PLACE})",
        "None if {v} is None else _place(path, {v}[0], {v}[1])",
    ),
}


def _reader(cls: type[Note]) -> Callable[[list[Any], Path], Note | None]:
    """Reads ``cls`` from its plain values: one function, written for the class's fields (``_READ``), that
    checks every value's type where it stands and builds the note (a cached parse reads every note of
    the deck: calls per field would be most of the time)."""
    known = _READERS.get(cls)
    if known is not None:
        return known
    _, kinds = _layout(cls)
    names = [f"v{i}" for i in range(len(kinds))]
    checks = " and ".join(_READ[kind][0].format(v=v) for v, kind in zip(names, kinds, strict=True))
    values = ", ".join(_READ[kind][1].format(v=v) for v, kind in zip(names, kinds, strict=True))
    source = (
        "def read(value, path):\n"
        f"    if len(value) != {len(kinds) + 1}:\n        return None\n"
        f"    _, {', '.join(names)} = value\n"
        f"    if not ({checks}):\n        return None\n"
        f"    return make({values})\n"
    )
    scope: dict[str, Any] = {"make": maker(cls), "_body": maker(Body), "_place": maker(SourceLocation), "_STR": {str}}
    exec(source, scope)  # (the source is made of the fixed templates above, never of data)
    read: Callable[[list[Any], Path], Note | None] = scope["read"]
    _READERS[cls] = read
    return read


def diagnostics_plain(found: Sequence[Diagnostic], path: Path, base: int) -> list[list[Any]]:
    """Findings as JSON values: lines relative to ``base`` in ``path`` (None), absolute elsewhere."""
    out = []
    for d in found:
        same = d.location.path == path
        line = d.location.line - base if same else d.location.line
        out.append([None if same else d.location.path.as_posix(), line, d.location.col, d.rule, d.message, d.hint])
        out[-1].append(d.severity.value)
    return out


def diagnostics_from(value: Any, path: Path, base: int) -> list[Diagnostic] | None:
    """What ``diagnostics_plain`` wrote, or None if ``value`` is not that."""
    if type(value) is not list:
        return None
    try:
        out = []
        for where, line, col, rule, message, hint, severity in value:
            texts_ok = all(type(t) is str for t in (rule, message, hint))
            if (
                type(line) is not int
                or type(col) is not int
                or not texts_ok
                or not (where is None or type(where) is str)
            ):
                return None
            place = SourceLocation(path, base + line, col) if where is None else SourceLocation(Path(where), line, col)
            out.append(Diagnostic(place, rule, message, hint, Severity(severity)))
    except (TypeError, ValueError):
        return None
    return out


def category_plain(
    category: Category | None, found: Sequence[Diagnostic], path: Path, digests: Sequence[bytes]
) -> list[Any]:
    """One parsed file (its category, None if unusable, and its diagnostics) as JSON values, with its
    notes' digests (``note_digest``)."""
    problems = diagnostics_plain(found, path, 0)
    if category is None:
        return [None, problems]
    c = category
    head: list[Any] = [c.name, c.kind.value, c.location.line, list(c.tags), c.order, c.intro, c.reverse]
    head += [[list(m) for m in c.missing_ids], [note_plain(n) for n in c.notes]]
    return [[*head, [d.hex() for d in digests]], problems]


Parsed = tuple[Category | None, list[Diagnostic], list[bytes]]  # a file's category, findings, note digests


def category_from(value: Any, path: Path) -> Parsed | None:
    """What ``category_plain`` wrote for the file at ``path``, or None if ``value`` is not that."""
    try:
        head, plain_problems = value
        problems = diagnostics_from(plain_problems, path, 0)
        if problems is None:
            return None
        if head is None:
            return None, problems, []
        name, kind, line, tags, order, intro, reverse, missing, plain_notes, hex_digests = head
        digests = [bytes.fromhex(h) for h in hex_digests]
        notes = [note_from_plain(n, path) for n in plain_notes]
        ok = type(name) is str and type(line) is int and type(intro) is str and type(reverse) is bool
        ok = ok and (order is None or type(order) is int) and all(type(t) is str for t in tags)
        ok = ok and all(type(p) is str and type(n) is int for p, n in missing)
        if not ok or any(n is None for n in notes) or len(digests) != len(notes) or {len(d) for d in digests} - {16}:
            return None
        category = Category(
            name=name,
            kind=Kind(kind),
            location=SourceLocation(path, line),
            notes=tuple(n for n in notes if n is not None),
            tags=tuple(tags),
            order=order,
            intro=intro,
            reverse=reverse,
            missing_ids=tuple((p, n) for p, n in missing),
        )
    except (TypeError, ValueError):
        return None
    return category, problems, digests
