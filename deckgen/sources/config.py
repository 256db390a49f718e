"""Load and validate configuration: ``deckgen.toml`` and each file's YAML front matter."""

from __future__ import annotations

import difflib
import re
import tomllib
import uuid
from collections.abc import Set
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deckgen.errors import Diagnostic
from deckgen.sources.model import DeckConfig, Kind, LintConfig, SourceLocation

CONFIG_NAME = "deckgen.toml"
FRONT_MATTER_KEYS = ("deck", "kind", "tags", "order", "reverse", "tts")
FOLDER_KEYS = ("deck", "order")  # the front matter of a folder's _deck.md
CONFIG_KEYS = ("name", "uuid", "output", "lint")
LINT_KEYS = ("max_answer_words", "max_list_items", "max_code_lines", "max_cloze_deletions", "disable")
TAG_RE = re.compile(r"^[^\s\"<>\x00-\x1f\x7f]+$")
# Characters Anki strips or reads as markup in deck names, and the name of the deck everything
# lands in when a deck is missing: a root deck called "Default" merges into every user's own.
_NAME_BAD_RE = re.compile(r"[<>\x00-\x1f\x7f]")
_MAX_LINT_VALUE = 1_000_000
# Anki's text-to-speech: a language code, then optional voices=A,B and speed=1.2 (Anki's own syntax).
TTS_RE = re.compile(r"^[a-z]{2,3}(?:_[A-Za-z]{2,4})?(?:\s+(?:voices=[^\s\]]+|speed=\d+(?:\.\d+)?))*$")
TTS_OFF = {"off", "false", "no", "none"}
TTS_HINT = "e.g. 'en_US', 'de_DE speed=0.9' or 'ja_JP voices=Apple_Otoya'; 'off' to turn it off"


def parse_tts(value: str) -> str | None:
    """A ``tts`` setting → Anki's tag options (``lang=en_US speed=0.9``), "" for off, None if invalid."""
    words = value.split()
    if not words or words[0].lower() in TTS_OFF:
        return "" if len(words) == 1 else None
    if not TTS_RE.match(" ".join(words)):
        return None
    return " ".join([f"lang={words[0]}", *words[1:]])


def did_you_mean(word: str, choices: tuple[str, ...] | list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else "known: " + ", ".join(choices)


def default_output(name: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower()
    return f"{slug or 'deck'}.apkg"


def _toml_error_location(exc: tomllib.TOMLDecodeError, path: Path) -> SourceLocation:
    line = getattr(exc, "lineno", None)
    col = getattr(exc, "colno", None)
    if not line:  # Python < 3.14 keeps the place only in the message: "... (at line 3, column 7)"
        m = re.search(r"at line (\d+), column (\d+)", str(exc))
        line, col = (int(m.group(1)), int(m.group(2))) if m else (1, 1)
    return SourceLocation(path, int(line), int(col or 1))


def _toml_message(exc: tomllib.TOMLDecodeError) -> str:
    return getattr(exc, "msg", None) or re.sub(r"\s*\(at (?:line \d+, column \d+|end of document)\)$", "", str(exc))


def load_config(
    text: str, path: Path, known_rules: Set[str] | None = None
) -> tuple[DeckConfig | None, list[Diagnostic]]:
    """Parse ``deckgen.toml``; returns the config or the diagnostics explaining why not.

    Every diagnostic points at the line and column of the key or value it is about.
    ``known_rules`` (check.RULES) lets ``lint.disable`` name only rules that exist.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        where = _toml_error_location(exc, path)
        return None, [Diagnostic(where, "config-invalid", f"invalid TOML: {_toml_message(exc)}")]
    problems = [
        Diagnostic(
            toml_key_location(text, key, path, table=isinstance(data[key], dict)),
            "config-unknown-key",
            f"unknown key '{key}'",
            did_you_mean(key, CONFIG_KEYS),
        )
        for key in data
        if key not in CONFIG_KEYS
    ]
    name = data.get("name")
    name_problem = deck_name_problem(name)
    if name_problem is not None:
        problems.append(
            Diagnostic(
                toml_key_location(text, "name", path),
                "config-invalid",
                f"'name' {name_problem}",
                'e.g. name = "ML Interview Prep"',
            )
        )
        return None, problems
    assert isinstance(name, str)
    output = data.get("output", default_output(name))
    if not isinstance(output, str) or not _OUTPUT_RE.match(output):
        problems.append(
            Diagnostic(
                toml_key_location(text, "output", path),
                "config-invalid",
                "'output' must be a plain file name ending in .apkg (no folders, control characters or leading dot)",
            )
        )
        output = default_output(name)
    here = toml_key_location(text, "lint", path, table=True)
    lint, lint_problems = _load_lint(data.get("lint", {}), here, text, known_rules)
    problems.extend(lint_problems)
    deck_uuid = _load_uuid(data.get("uuid"), text, path, problems)
    if deck_uuid is None:
        return None, problems
    return DeckConfig(name=name.strip(), output=output, uuid=deck_uuid, lint=lint), problems


def fresh_uuid_line() -> str:
    """A ``uuid = "..."`` line with a new random UUID, for a deck that has none yet."""
    return f'uuid = "{uuid.uuid4()}"'


def _load_uuid(value: Any, text: str, path: Path, problems: list[Diagnostic]) -> str | None:
    """The deck uuid in its canonical form (lowercase, hyphenated), or None with a diagnostic.

    Note GUIDs and deck ids derive from it, so it is required: without it two decks using the same
    note ids would overwrite each other's notes in Anki.
    """
    paste = f"add this line to deckgen.toml once and never change it: {fresh_uuid_line()}"
    if value is None:
        problems.append(
            Diagnostic(
                SourceLocation(path, 1),
                "uuid-missing",
                "deckgen.toml has no 'uuid': the deck's identity, from which every note's GUID derives",
                paste,
            )
        )
        return None
    try:
        if not isinstance(value, str):
            raise ValueError(value)
        canonical = str(uuid.UUID(value.strip()))
    except ValueError:
        problems.append(
            Diagnostic(
                toml_key_location(text, "uuid", path),
                "config-invalid",
                f"'uuid' must be a UUID string like \"{uuid.UUID(int=0)}\", not {value!r}",
                "if this deck was never shipped, " + paste + "; if it was, restore the old value",
            )
        )
        return None
    return canonical


_OUTPUT_RE = re.compile(r"^[^./\\\x00-\x1f\x7f][^/\\\x00-\x1f\x7f]*\.apkg$")


def deck_name_problem(name: object, *, root: bool = True) -> str | None:
    """Why ``name`` cannot be a (root) deck name (None: it can)."""
    if not isinstance(name, str) or not name.strip():
        return "must be a non-empty string"
    if "::" in name:
        return "cannot contain '::' (Anki's subdeck separator)"
    if _NAME_BAD_RE.search(name):
        return "cannot contain '<', '>' or control characters (Anki strips or misreads them)"
    if root and name.strip().casefold() == "default":
        return "cannot be 'Default': Anki would merge the deck into every user's Default deck"
    return None


def toml_key_location(text: str, key: str, path: Path, *, table: bool = False) -> SourceLocation:
    """Where ``key = ...`` (or ``[key]`` for a table) stands in a TOML text; tomllib does not say."""
    pattern = rf"^[ \t]*\[[ \t]*{re.escape(key)}[ \t]*\]" if table else rf"^[ \t]*\"?{re.escape(key)}\"?[ \t]*="
    m = re.search(pattern, text, re.M)
    if m is None:
        return SourceLocation(path, 1)
    line = text.count("\n", 0, m.start()) + 1
    col = m.start() - (text.rfind("\n", 0, m.start()) + 1) + 1 + (len(m.group(0)) - len(m.group(0).lstrip()))
    return SourceLocation(path, line, col)


def _within(text: str, table: SourceLocation, key: str) -> SourceLocation:
    """The line of ``key = `` inside the table at ``table`` (the table's own line if not found)."""
    lines = text.split("\n")
    for i in range(table.line, len(lines)):
        if lines[i].lstrip().startswith("["):
            break
        if re.match(rf"^[ \t]*{re.escape(key)}[ \t]*=", lines[i]):
            return SourceLocation(table.path, i + 1, len(lines[i]) - len(lines[i].lstrip()) + 1)
    return table


def _text_after(text: str, start: SourceLocation, snippet: str) -> SourceLocation:
    """Where ``snippet`` first stands at or after ``start`` (e.g. one rule id in a list), else ``start``."""
    lines = text.split("\n")
    offset = sum(len(line) + 1 for line in lines[: start.line - 1]) + start.col - 1
    found = text.find(snippet, offset)
    if found < 0:
        return start
    line = text.count("\n", 0, found) + 1
    return SourceLocation(start.path, line, found - (text.rfind("\n", 0, found) + 1) + 1)


def _load_lint(
    data: Any, here: SourceLocation, text: str, known_rules: Set[str] | None = None
) -> tuple[LintConfig, list[Diagnostic]]:
    """The ``[lint]`` table (at ``here``); ``known_rules`` (check.RULES) are the ids ``disable`` may name."""
    if not isinstance(data, dict):
        return LintConfig(), [Diagnostic(here, "config-invalid", "[lint] must be a table")]
    problems = [
        Diagnostic(
            _within(text, here, key), "config-unknown-key", f"unknown key 'lint.{key}'", did_you_mean(key, LINT_KEYS)
        )
        for key in data
        if key not in LINT_KEYS
    ]
    values: dict[str, Any] = {}
    for key in LINT_KEYS[:-1]:
        if key in data:
            value = data[key]
            if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= _MAX_LINT_VALUE:
                values[key] = value
            else:
                where = _within(text, here, key)
                problems.append(
                    Diagnostic(where, "config-invalid", f"'lint.{key}' must be an integer from 1 to {_MAX_LINT_VALUE}")
                )
    disable = data.get("disable", [])
    if isinstance(disable, list) and all(isinstance(r, str) for r in disable):
        values["disable"] = frozenset(disable)
        for rule in sorted(set(disable) - known_rules if known_rules is not None else ()):
            problems.append(
                Diagnostic(
                    _text_after(text, _within(text, here, "disable"), f'"{rule}"'),
                    "config-invalid",
                    f"lint.disable names unknown rule {rule!r}",
                    did_you_mean(rule, sorted(known_rules or ())),
                )
            )
    else:
        where = _within(text, here, "disable")
        problems.append(Diagnostic(where, "config-invalid", "'lint.disable' must be a list of rule ids"))
    return LintConfig(**values), problems


@dataclass(frozen=True, slots=True)
class FrontMatter:
    """The validated front matter of one category file."""

    deck: str
    kind: Kind
    tags: tuple[str, ...]
    order: int | None
    reverse: bool
    tts: str = ""  # Anki's tts options for every note of the file ("" = none)


def deck_name_from_path(path: Path) -> str:
    """``algorithms-and-models.md`` → ``Algorithms and Models`` (a folder ``deep-learning`` → ``Deep Learning``)."""
    small = {"and", "or", "of", "the", "in", "on", "for", "to", "a", "an", "vs"}
    words = re.split(r"[-_\s]+", path.stem if path.suffix.lower() in (".md", ".markdown") else path.name)
    out = [w if (i and w.lower() in small) else w[:1].upper() + w[1:] for i, w in enumerate(words) if w]
    return " ".join(out) or path.stem


def check_tag(tag: str, location: SourceLocation) -> Diagnostic | None:
    if not TAG_RE.match(tag):
        return Diagnostic(
            location,
            "tag-invalid",
            f"invalid tag {tag!r}: tags cannot contain spaces, quotes, '<', '>' or control characters",
            "use '-' or '_' instead of spaces, '::' for hierarchy",
        )
    return None


def _key_location(text: str | None, key: str, path: Path, line: int) -> SourceLocation:
    """Where ``key:`` stands in the front matter (the opening '---' is at ``line``)."""
    for i, raw in enumerate((text or "").split("\n")):
        if re.match(rf"^{re.escape(key)}\s*:", raw):
            return SourceLocation(path, line + 1 + i)
    return SourceLocation(path, line)


def parse_front_matter(
    text: str | None, path: Path, line: int, keys: tuple[str, ...] = FRONT_MATTER_KEYS, default_deck: str = ""
) -> tuple[FrontMatter, list[Diagnostic]]:
    """Validate the YAML between the ``---`` lines (``text`` is None when there is none).

    ``keys`` are the keys allowed (a folder's ``_deck.md`` allows fewer than a category file);
    ``deck`` defaults to ``default_deck``, else to a name made from the file name.
    """
    here = SourceLocation(path, line)
    problems: list[Diagnostic] = []
    data: Any = {}
    if text is not None and text.strip():
        import yaml  # ~25 ms: only files parsed afresh need it (the build cache keeps the others' parse)

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = SourceLocation(path, line + 1 + (mark.line if mark else 0), 1 + (mark.column if mark else 0))
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            problems.append(Diagnostic(where, "front-matter-invalid", f"invalid YAML front matter: {problem}"))
            data = {}
    if data is None:
        data = {}
    if not isinstance(data, dict):
        problems.append(Diagnostic(here, "front-matter-invalid", "front matter must be a mapping of keys to values"))
        data = {}

    def at(key: str) -> SourceLocation:
        return _key_location(text, key, path, line)

    for key in data:
        if key not in keys:
            problems.append(
                Diagnostic(
                    at(str(key)),
                    "front-matter-unknown-key",
                    f"unknown front-matter key '{key}'",
                    did_you_mean(str(key), keys),
                )
            )
    fallback = default_deck or deck_name_from_path(path)
    deck = data.get("deck", fallback)
    deck_problem = deck_name_problem(deck, root=False)
    if deck_problem is not None:
        problems.append(Diagnostic(at("deck"), "front-matter-invalid", f"'deck' {deck_problem}"))
        deck = fallback
    kind = Kind.QUESTION
    raw_kind = data.get("kind", "question")
    try:
        kind = Kind(raw_kind)
    except ValueError:
        problems.append(
            Diagnostic(
                at("kind"),
                "kind-unknown",
                f"unknown kind {raw_kind!r}",
                did_you_mean(str(raw_kind), [k.value for k in Kind]),
            )
        )
    tags = _tags(data.get("tags", []), at("tags"), problems)
    order = data.get("order")
    if order is not None and (not isinstance(order, int) or isinstance(order, bool)):
        problems.append(Diagnostic(at("order"), "front-matter-invalid", "'order' must be an integer"))
        order = None
    reverse = data.get("reverse", False)
    if not isinstance(reverse, bool):
        problems.append(Diagnostic(at("reverse"), "front-matter-invalid", "'reverse' must be true or false"))
        reverse = False
    tts = parse_tts(str(data.get("tts", "off")))
    if tts is None:
        problems.append(
            Diagnostic(at("tts"), "front-matter-invalid", f"'tts' must name a language, not {data['tts']!r}", TTS_HINT)
        )
        tts = ""
    return FrontMatter(deck.strip(), kind, tags, order, reverse, tts), problems


def _tags(raw: Any, here: SourceLocation, problems: list[Diagnostic]) -> tuple[str, ...]:
    if isinstance(raw, str):
        raw = raw.split()
    if not isinstance(raw, list) or not all(isinstance(t, str) for t in raw):
        problems.append(Diagnostic(here, "front-matter-invalid", "'tags' must be a list of strings"))
        return ()
    good = []
    for tag in raw:
        bad = check_tag(tag, here)
        if bad:
            problems.append(bad)
        else:
            good.append(tag)
    return tuple(good)
