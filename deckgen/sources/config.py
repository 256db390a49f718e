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

import yaml

from deckgen.errors import Diagnostic
from deckgen.sources.model import DeckConfig, Kind, LintConfig, SourceLocation

CONFIG_NAME = "deckgen.toml"
FRONT_MATTER_KEYS = ("deck", "kind", "tags", "order", "reverse")
FOLDER_KEYS = ("deck", "order")  # the front matter of a folder's _deck.md
CONFIG_KEYS = ("name", "uuid", "output", "lint")
LINT_KEYS = ("max_answer_words", "max_list_items", "max_code_lines", "max_cloze_deletions", "disable")
TAG_RE = re.compile(r"^[^\s\"]+$")


def did_you_mean(word: str, choices: tuple[str, ...] | list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else "known: " + ", ".join(choices)


def default_output(name: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower()
    return f"{slug or 'deck'}.apkg"


_TOML_TABLE_RE = re.compile(r"^\s*\[\s*([A-Za-z0-9_.-]+)\s*\]")
_TOML_KEY_RE = re.compile(r"^(\s*)([A-Za-z0-9_-]+|\"[^\"]*\")\s*=\s*(\S?)")


class ConfigLocator:
    """Where each key (and its value) of a ``deckgen.toml`` stands, for located diagnostics.

    tomllib reports values, not positions; this scans the lines for ``key =`` under each
    ``[table]`` header (the plain subset of TOML a deck config uses). Unknown places fall back to 1:1.
    """

    def __init__(self, text: str, path: Path) -> None:
        self.path = path
        self.keys: dict[tuple[str, str], tuple[int, int, int]] = {}
        self.tables: dict[str, int] = {}
        self.lines = text.split("\n")
        table = ""
        for number, line in enumerate(self.lines, start=1):
            header = _TOML_TABLE_RE.match(line)
            if header:
                table = header.group(1)
                self.tables.setdefault(table, number)
                continue
            key = _TOML_KEY_RE.match(line)
            if key:
                name = key.group(2).strip('"')
                value_col = key.start(3) + 1 if key.group(3) else key.end(2) + 1
                self.keys.setdefault((table, name), (number, key.start(2) + 1, value_col))

    def key(self, name: str, table: str = "") -> SourceLocation:
        """The place of ``name =`` (or of the ``[name]`` header), else 1:1."""
        if (table, name) in self.keys:
            line, col, _ = self.keys[(table, name)]
            return SourceLocation(self.path, line, col)
        dotted = f"{table}.{name}" if table else name
        if dotted in self.tables:
            return SourceLocation(self.path, self.tables[dotted], 1)
        return SourceLocation(self.path, 1)

    def text(self, snippet: str, start: SourceLocation) -> SourceLocation:
        """Where ``snippet`` first occurs at or after ``start`` (e.g. a rule inside a list), else ``start``."""
        offset = sum(len(line) + 1 for line in self.lines[: start.line - 1]) + start.col - 1
        found = "\n".join(self.lines).find(snippet, offset)
        if found < 0:
            return start
        before = "\n".join(self.lines)[:found]
        return SourceLocation(self.path, before.count("\n") + 1, found - (before.rfind("\n") + 1) + 1)

    def value(self, name: str, table: str = "") -> SourceLocation:
        """The place of the value after ``name =``, else that of the key."""
        if (table, name) in self.keys:
            line, _, col = self.keys[(table, name)]
            return SourceLocation(self.path, line, col)
        return self.key(name, table)


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
    at = ConfigLocator(text, path)
    problems = [
        Diagnostic(at.key(key), "config-unknown-key", f"unknown key '{key}'", did_you_mean(key, CONFIG_KEYS))
        for key in data
        if key not in CONFIG_KEYS
    ]
    name = data.get("name")
    if not isinstance(name, str) or not name.strip() or "::" in name:
        problems.append(
            Diagnostic(
                at.value("name"),
                "config-invalid",
                "'name' must be a non-empty deck name without '::'",
                'e.g. name = "ML Interview Prep"',
            )
        )
        return None, problems
    output = data.get("output", default_output(name))
    if not isinstance(output, str) or not output.endswith(".apkg") or "/" in output or "\\" in output:
        problems.append(
            Diagnostic(at.value("output"), "config-invalid", "'output' must be a file name ending in .apkg")
        )
        output = default_output(name)
    lint, lint_problems = _load_lint(data.get("lint", {}), at, known_rules)
    problems.extend(lint_problems)
    deck_uuid = _load_uuid(data.get("uuid"), at, problems)
    if deck_uuid is None:
        return None, problems
    return DeckConfig(name=name.strip(), output=output, uuid=deck_uuid, lint=lint), problems


def fresh_uuid_line() -> str:
    """A ``uuid = "..."`` line with a new random UUID, for a deck that has none yet."""
    return f'uuid = "{uuid.uuid4()}"'


def _load_uuid(value: Any, at: ConfigLocator, problems: list[Diagnostic]) -> str | None:
    """The deck uuid in its canonical form (lowercase, hyphenated), or None with a diagnostic.

    Note GUIDs and deck ids derive from it, so it is required: without it two decks using the same
    note ids would overwrite each other's notes in Anki.
    """
    paste = f"add this line to deckgen.toml once and never change it: {fresh_uuid_line()}"
    if value is None:
        problems.append(
            Diagnostic(
                SourceLocation(at.path, 1),
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
                at.value("uuid"),
                "config-invalid",
                f"'uuid' must be a UUID string like \"{uuid.UUID(int=0)}\", not {value!r}",
                "if this deck was never shipped, " + paste + "; if it was, restore the old value",
            )
        )
        return None
    return canonical


def _load_lint(data: Any, at: ConfigLocator, known_rules: Set[str] | None) -> tuple[LintConfig, list[Diagnostic]]:
    if not isinstance(data, dict):
        return LintConfig(), [Diagnostic(at.key("lint"), "config-invalid", "[lint] must be a table")]
    problems = [
        Diagnostic(at.key(key, "lint"), "config-unknown-key", f"unknown key 'lint.{key}'", did_you_mean(key, LINT_KEYS))
        for key in data
        if key not in LINT_KEYS
    ]
    values: dict[str, Any] = {}
    for key in LINT_KEYS[:-1]:
        if key in data:
            if isinstance(data[key], int) and not isinstance(data[key], bool) and data[key] > 0:
                values[key] = data[key]
            else:
                problems.append(
                    Diagnostic(at.value(key, "lint"), "config-invalid", f"'lint.{key}' must be a positive integer")
                )
    disable = data.get("disable", [])
    if isinstance(disable, list) and all(isinstance(r, str) for r in disable):
        values["disable"] = frozenset(disable)
        for rule in sorted(set(disable) - known_rules if known_rules is not None else ()):
            problems.append(
                Diagnostic(
                    at.text(f'"{rule}"', at.value("disable", "lint")),
                    "config-invalid",
                    f"lint.disable names unknown rule {rule!r}",
                    did_you_mean(rule, sorted(known_rules or ())),
                )
            )
    else:
        problems.append(
            Diagnostic(at.value("disable", "lint"), "config-invalid", "'lint.disable' must be a list of rule ids")
        )
    return LintConfig(**values), problems


@dataclass(frozen=True, slots=True)
class FrontMatter:
    """The validated front matter of one category file."""

    deck: str
    kind: Kind
    tags: tuple[str, ...]
    order: int | None
    reverse: bool


def deck_name_from_path(path: Path) -> str:
    """``algorithms-and-models.md`` → ``Algorithms and Models`` (a folder ``deep-learning`` → ``Deep Learning``)."""
    small = {"and", "or", "of", "the", "in", "on", "for", "to", "a", "an", "vs"}
    words = re.split(r"[-_\s]+", path.stem if path.suffix == ".md" else path.name)
    out = [w if (i and w.lower() in small) else w[:1].upper() + w[1:] for i, w in enumerate(words) if w]
    return " ".join(out) or path.stem


def check_tag(tag: str, location: SourceLocation) -> Diagnostic | None:
    if not TAG_RE.match(tag):
        return Diagnostic(
            location,
            "tag-invalid",
            f"invalid tag {tag!r}: tags cannot contain spaces or quotes",
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
    if not isinstance(deck, str) or not deck.strip() or "::" in deck:
        problems.append(Diagnostic(at("deck"), "front-matter-invalid", "'deck' must be a non-empty name without '::'"))
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
    return FrontMatter(deck.strip(), kind, tags, order, reverse), problems


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
