"""Parse category files (bytes plus a path for messages) into the typed model.

Every problem becomes a Diagnostic; ``parse_deck`` raises one SourceError holding all of them,
so a single run reports everything that is wrong.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence, Set
from dataclasses import dataclass, field, replace
from pathlib import Path

from deckgen.errors import Diagnostic, Severity, SourceError
from deckgen.sources.config import (
    FOLDER_KEYS,
    TTS_HINT,
    FrontMatter,
    check_tag,
    deck_name_from_path,
    did_you_mean,
    parse_front_matter,
    parse_tts,
)
from deckgen.sources.ids import assign_ids, suggest_id
from deckgen.sources.model import (
    NOTE_CLASSES,
    Body,
    Category,
    Deck,
    DeckConfig,
    FolderDeck,
    Note,
    SourceLocation,
)

ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
HEADING_RE = re.compile(r"^(#{1,6})(?:[ \t]+(.*?))?[ \t]*$")
META_RE = re.compile(r"^<!--\s*([A-Za-z][\w-]*)\s*(?::(.*?))?\s*-->\s*$")
FENCE_RE = re.compile(r"^\s*(`{3,}|~{3,})(.*)$")
EXTRA_MARKER = "extra"
CLOZE_RE = re.compile(r"\{\{c\d+::")
NOTE_OPTIONS = ("id", "guid", "tags", "source", "cloze", "reverse", "type-in", "tts", "ignore")
# What Anki accepts in its guid column and deckgen can write in a comment: printable ASCII, no space.
GUID_RE = re.compile(r"^[!-~]{1,64}$")
FOLDER_FILE = "_deck.md"  # a folder's name, order and description; not a category
TRUE_WORDS = {"", "true", "yes", "on", "1"}
FALSE_WORDS = {"false", "no", "off", "0"}


@dataclass(slots=True)
class _Line:
    number: int
    text: str
    in_fence: bool


def decode(data: bytes, path: Path) -> tuple[str | None, list[Diagnostic]]:
    """Bytes → text with LF line ends and no BOM; NUL bytes and bad UTF-8 are errors."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        return None, [
            Diagnostic(
                SourceLocation(path, line, col),
                "encoding",
                f"file is not valid UTF-8 (byte 0x{data[exc.start]:02x})",
                "save the file as UTF-8",
            )
        ]
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    if "\x00" in text:
        offset = text.index("\x00")
        line = text.count("\n", 0, offset) + 1
        return None, [
            Diagnostic(SourceLocation(path, line), "binary-content", "file contains NUL bytes; is it a binary file?")
        ]
    return text, []


def _split_front_matter(lines: list[str], path: Path) -> tuple[str | None, int, list[Diagnostic]]:
    """Return (front matter text or None, index of first body line, diagnostics)."""
    if not lines or lines[0].rstrip() != "---":
        return None, 0, []
    for i in range(1, len(lines)):
        if lines[i].rstrip() in ("---", "..."):
            return "\n".join(lines[1:i]), i + 1, []
    return (
        None,
        len(lines),
        [
            Diagnostic(
                SourceLocation(path, 1),
                "front-matter-unclosed",
                "front matter opened with '---' is never closed",
                "end the front matter with a line '---'",
            )
        ],
    )


@dataclass(frozen=True, slots=True)
class Fence:
    """A fenced code block: indexes of its opening and closing lines (``end`` None: never closed)."""

    marker: str
    start: int
    end: int | None


def find_fences(lines: Sequence[str], first: int = 0) -> list[Fence]:
    """Every fenced code block in ``lines[first:]``, by the rules Markdown applies.

    A fence opens with three or more backticks or tildes (a backtick fence's info string may not
    hold a backtick) and closes with a bare line of at least as many of the same character. The one
    place these rules live: parsing, masking code for lint rules and counting code lines all use it.
    """
    fences: list[Fence] = []
    marker: str | None = None
    opened = 0
    for i in range(first, len(lines)):
        line = lines[i]
        m = FENCE_RE.match(line) if "```" in line or "~~~" in line else None
        if m is None:
            continue
        run, rest = m.group(1), m.group(2)
        if marker is None:
            if not (run[0] == "`" and "`" in rest):
                marker, opened = run, i
        elif run[0] == marker[0] and len(run) >= len(marker) and not rest.strip():
            fences.append(Fence(marker, opened, i))
            marker = None
    if marker is not None:
        fences.append(Fence(marker, opened, None))
    return fences


def _is_note_heading(line: str) -> bool:
    m = HEADING_RE.match(line)
    return m is not None and len(m.group(1)) == 2


def _mark_fences(lines: list[str], start: int, path: Path) -> tuple[list[_Line], list[Diagnostic], set[int]]:
    """Number the lines and mark those inside fenced code, so headings in code are not notes.

    A fence that is never closed would swallow the rest of the file. Its error names the note
    headings it swallows, and parsing recovers at the first of them, so the notes after it are
    still parsed and checked (no follow-on errors from swallowed text, no hidden later errors).
    Also returns the line numbers (1-based) where unclosed fences open.
    """
    in_fence = [False] * len(lines)
    problems = []
    unclosed: set[int] = set()
    first = start
    while first < len(lines):
        resume = len(lines)
        for fence in find_fences(lines, first):
            if fence.end is not None:
                in_fence[fence.start : fence.end + 1] = [True] * (fence.end + 1 - fence.start)
                continue
            swallowed = [i for i in range(fence.start + 1, len(lines)) if _is_note_heading(lines[i])]
            last = (swallowed[0] if swallowed else len(lines)) - 1
            in_fence[fence.start : last + 1] = [True] * (last + 1 - fence.start)
            unclosed.add(fence.start + 1)
            problems.append(_unclosed_fence(path, fence, [(i + 1, lines[i]) for i in swallowed]))
            resume = swallowed[0] if swallowed else len(lines)
        first = resume
    return [_Line(i + 1, lines[i], in_fence[i]) for i in range(start, len(lines))], problems, unclosed


def _unclosed_fence(path: Path, fence: Fence, swallowed: list[tuple[int, str]]) -> Diagnostic:
    message = f"code fence {fence.marker!r} is never closed; everything after it would be code"
    if swallowed:
        names = ", ".join(f"'{text[2:].strip()}' (line {number})" for number, text in swallowed[:3])
        more = f" and {len(swallowed) - 3} more" if len(swallowed) > 3 else ""
        count = len(swallowed)
        message += f", swallowing {count} note{'s' * (count != 1)}: {names}{more}"
    return Diagnostic(
        SourceLocation(path, fence.start + 1),
        "fence-unclosed",
        message,
        f"close the block with a line {fence.marker!r} before the next '## ' heading",
    )


def _hidden_heading(line: _Line, path: Path, *, in_note: bool) -> list[Diagnostic]:
    """A line Markdown makes a heading (or that looks like one) which deckgen would not take as a note.

    Python-Markdown makes every line starting with '#' a heading (``##What``, ``##`` + no-break space,
    ``#######``); a heading indented by 1-3 spaces is plain text. Either way the author's note would
    vanish into the previous answer. (Outside notes only '##' variants count: a '#Title' there is intro.)
    """
    text = line.text
    stripped = text.lstrip(" ")
    indent = len(text) - len(stripped)
    hashes = len(stripped) - len(stripped.lstrip("#"))
    if not hashes or indent >= 4 or (not in_note and hashes != 2):
        return []
    after = stripped[hashes:]
    if indent:
        if hashes > 6 or (after and not after[0].isspace()):
            return []  # '  #tag' is text to Markdown and to the reader
        message = f"heading indented by {indent} space(s) is plain text, not a note"
        hint = "remove the indentation: a note starts with '## ' at the start of the line"
    else:
        message = f"{text.strip()[:40]!r} is a heading to Markdown but not a note heading"
        if hashes == 2:
            hint = "write '## ' followed by the prompt (one plain space after '##')"
        else:
            hint = "start a note with '## ', use **bold** for a sub-heading, or write '\\#' for a literal '#'"
    return [Diagnostic(SourceLocation(path, line.number, indent + 1), "heading-malformed", message, hint)]


_EXTRA_WITH_TEXT = re.compile(r"^(\s*)<!--\s*extra\s*:")


def _extra_with_text(line: _Line, path: Path) -> list[Diagnostic]:
    """``<!-- extra: text -->`` is an HTML comment: the text would silently not be shown."""
    m = _EXTRA_WITH_TEXT.match(line.text) if "<!--" in line.text else None
    if m is None:
        return []
    return [
        Diagnostic(
            SourceLocation(path, line.number, len(m.group(1)) + 1),
            "extra-with-text",
            "'<!-- extra: ... -->' is a comment: its text would not be on the card",
            "write <!-- extra --> on its own line and the extra text on the lines below it",
        )
    ]


def _blank_comments(lines: list[_Line], path: Path, problems: list[Diagnostic]) -> list[_Line]:
    """Blank out block-level HTML comments spanning lines, so a note commented out is not built.

    A comment opens on a line starting with ``<!--`` that does not close there, and closes on the
    first later line holding ``-->`` that is not itself a one-line comment (so the ``<!-- id: ... -->``
    of a commented-out note does not end it). Line numbers stay. An unclosed comment is an error and
    hides nothing: the notes after it are still read (and reported), never silently swallowed.
    """
    out = list(lines)
    starts = [i for i, line in enumerate(lines) if "<!--" in line.text]  # the only lines a comment can open on
    resume = 0  # the line after the last comment blanked out
    for i in starts:
        if i < resume:
            continue
        line = lines[i]
        stripped = line.text.strip()
        if line.in_fence or not stripped.startswith("<!--") or "-->" in stripped[4:]:
            continue
        end = next(
            (
                j
                for j in range(i + 1, len(lines))
                if "-->" in lines[j].text and not lines[j].text.strip().startswith("<!--")
            ),
            None,
        )
        if end is None:
            problems.append(
                Diagnostic(
                    SourceLocation(path, line.number, line.text.index("<!--") + 1),
                    "comment-unclosed",
                    "HTML comment is never closed with '-->'; it would hide everything after it",
                    "close the comment with '-->'",
                )
            )
            return out
        tail = lines[end].text.split("-->", 1)[1]
        for j in range(i, end + 1):
            out[j] = _Line(lines[j].number, "", False)
        if tail.strip():
            out[end] = _Line(lines[end].number, " " * (len(lines[end].text) - len(tail)) + tail, False)
        resume = end + 1
    return out


@dataclass(slots=True)
class _NoteDraft:
    heading: _Line
    prompt: str
    body: list[_Line] = field(default_factory=list)


def parse_category(data: bytes, path: Path) -> tuple[Category | None, list[Diagnostic]]:
    """Parse one category file. Returns the category (None if unusable) and all diagnostics."""
    text, problems = decode(data, path)
    if text is None:
        return None, problems
    lines = text.split("\n")
    fm_text, body_start, fm_problems = _split_front_matter(lines, path)
    problems += fm_problems
    front, front_problems = parse_front_matter(fm_text, path, 1)
    problems += front_problems
    numbered, fence_problems, unclosed = _mark_fences(lines, body_start, path)
    problems += fence_problems
    problems += [
        d for line in numbered if "<!--" in line.text and not line.in_fence for d in _extra_with_text(line, path)
    ]
    numbered = _blank_comments(numbered, path, problems)

    intro: list[_Line] = []
    drafts: list[_NoteDraft] = []
    for line in numbered:
        heading = HEADING_RE.match(line.text) if line.text[:1] == "#" and not line.in_fence else None
        if heading is None and not line.in_fence and "#" in line.text[:4]:  # else it cannot look like one
            problems += _hidden_heading(line, path, in_note=bool(drafts))
        if heading and len(heading.group(1)) == 2:
            prompt = re.sub(r"[ \t]+#+$", "", heading.group(2) or "").strip()
            drafts.append(_NoteDraft(line, prompt))
            continue
        if heading and (drafts or len(heading.group(1)) > 2):
            level = len(heading.group(1))
            problems.append(
                Diagnostic(
                    SourceLocation(path, line.number),
                    "heading-level",
                    f"level-{level} heading; only '## ' headings start notes, so this would not be a card",
                    "use '## ' to start a note, or **bold** text for a sub-heading inside an answer",
                )
            )
        (drafts[-1].body if drafts else intro).append(line)

    if not drafts:
        problems.append(
            Diagnostic(
                SourceLocation(path, 1),
                "category-empty",
                f"'{front.deck}' has no notes",
                "add a '## ' heading with an id, or delete the file",
                Severity.WARNING,
            )
        )
    notes: list[Note] = []
    missing: list[tuple[str, int]] = []
    for draft in drafts:
        # already reported, with what it swallows
        broken = bool(unclosed) and any(line.number in unclosed for line in draft.body)
        note = _build_note(draft, front, path, problems, broken)
        if note is not None:
            notes.append(note)  # a built note has an id
        elif draft.prompt and _id_line(draft) is None:
            missing.append((draft.prompt, draft.heading.number))
    category = Category(
        name=front.deck,
        kind=front.kind,
        location=SourceLocation(path, 1),
        notes=tuple(notes),
        tags=front.tags,
        order=front.order,
        intro="\n".join(x.text for x in intro).strip(),
        reverse=front.reverse,
        missing_ids=tuple(missing),
    )
    return category, problems


@dataclass(frozen=True, slots=True)
class _IdComment:
    id: str
    aliases: tuple[str, ...]
    restore: bool


def _parse_id(value: str, where: SourceLocation, problems: list[Diagnostic]) -> _IdComment | None:
    """``new-id; was: old-id, older-id`` (optionally ``; restore``) → the id, its aliases, the restore flag."""
    parts = [p.strip() for p in value.split(";")]
    note_id, aliases, restore = parts[0], [], False
    for part in parts[1:]:
        if part == "restore":
            restore = True
            continue
        key, _, rest = part.partition(":")
        if key.strip() != "was" or not rest.strip():
            problems.append(
                Diagnostic(
                    where,
                    "id-invalid",
                    f"cannot read {part!r} in the id comment",
                    "write <!-- id: new-id; was: old-id --> (or <!-- id: old-id; restore --> for a removed note)",
                )
            )
            return None
        aliases += [a.strip() for a in rest.split(",") if a.strip()]
    ok = True
    for candidate in [note_id, *aliases]:
        if not ID_RE.match(candidate):
            ok = False
            problems.append(
                Diagnostic(
                    where,
                    "id-invalid",
                    f"invalid id {candidate!r}",
                    "ids use lowercase letters, digits, '-' and '_' and start with a letter or digit",
                )
            )
    return _IdComment(note_id, tuple(aliases), restore) if ok else None


def _bool(value: str, key: str, where: SourceLocation, problems: list[Diagnostic]) -> bool:
    word = value.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word not in FALSE_WORDS:
        problems.append(Diagnostic(where, "note-option-invalid", f"'{key}' takes true or false, not {value.strip()!r}"))
    return False


def _leading_options(draft: _NoteDraft) -> list[tuple[str, str, _Line]]:
    """The ``<!-- key: value -->`` comments right under the heading, up to the answer or ``<!-- extra -->``."""
    found = []
    for line in draft.body:
        if not line.text.strip():
            continue
        m = None if line.in_fence else META_RE.match(line.text.strip())
        if not m or m.group(1) == EXTRA_MARKER:
            break
        found.append((m.group(1), (m.group(2) or "").strip(), line))
    return found


def _id_line(draft: _NoteDraft) -> int | None:
    """The line of the note's id comment, wherever it stands among the options; None when it has none."""
    return next((line.number for key, _, line in _leading_options(draft) if key == "id"), None)


def missing_id_hint(suggestion: str) -> str:
    return f"add <!-- id: {suggestion} --> on the line after the heading (or run 'deckgen fix --add-ids')"


def _no_id(here: SourceLocation, prompt: str) -> Diagnostic:
    """'has no id', suggesting the prompt's own id; ``parse_deck`` makes the suggestion free deck-wide."""
    return Diagnostic(here, "id-missing", f"note {prompt!r} has no id", missing_id_hint(suggest_id(prompt)))


def _build_note(
    draft: _NoteDraft, front: FrontMatter, path: Path, problems: list[Diagnostic], broken: bool = False
) -> Note | None:
    """The note of one heading, or None after reporting why it cannot be one.

    ``broken`` notes (an unclosed fence opens inside them) are only checked for their options:
    their text is not what the author meant, so further findings would mislead.
    """
    here = SourceLocation(path, draft.heading.number)
    ok = True
    if not draft.prompt:
        problems.append(
            Diagnostic(here, "prompt-empty", "note heading has no prompt text", "write the question after '## '")
        )
        ok = False
    body = draft.body
    i = 0
    options: dict[str, tuple[str, SourceLocation]] = {}
    while i < len(body):
        line = body[i]
        if not line.text.strip():
            i += 1
            continue
        m = None if line.in_fence else META_RE.match(line.text.strip())
        if not m:
            break
        key, value = m.group(1), (m.group(2) or "").strip()
        where = SourceLocation(path, line.number)
        if key == EXTRA_MARKER:
            break
        if key not in NOTE_OPTIONS:
            problems.append(
                Diagnostic(
                    where, "note-option-unknown", f"unknown note option '{key}'", did_you_mean(key, NOTE_OPTIONS)
                )
            )
        elif key in options:
            problems.append(Diagnostic(where, "note-option-duplicate", f"note option '{key}' given twice"))
        elif not options and key != "id":
            id_line = _id_line(draft)
            if id_line is None:
                problems.append(_no_id(here, draft.prompt))
            else:
                problems.append(
                    Diagnostic(
                        where,
                        "id-missing",
                        f"the id comment (line {id_line}) must come first, right after the heading",
                        "move <!-- id: ... --> directly under the heading",
                    )
                )
            ok = False
        else:
            options[key] = (value, where)
        i += 1

    if not ok:
        return None
    if "id" not in options:
        problems.append(_no_id(here, draft.prompt))
        return None
    parsed_id = _parse_id(*options["id"], problems)
    if parsed_id is None or broken:
        return None
    note_id, aliases = parsed_id.id, parsed_id.aliases
    guid = ""
    if "guid" in options:
        guid, where = options["guid"]
        if not GUID_RE.match(guid):
            problems.append(
                Diagnostic(
                    where,
                    "note-option-invalid",
                    f"invalid guid {guid!r}",
                    "a guid is 1-64 printable ASCII characters without spaces, as Anki shows it in the browser",
                )
            )
            return None

    answer_lines, extra_lines = body[i:], []
    for j, line in enumerate(answer_lines):
        m = None if line.in_fence or "<!--" not in line.text else META_RE.match(line.text.strip())
        if m and m.group(1) == EXTRA_MARKER and m.group(2) is None:
            answer_lines, extra_lines = answer_lines[:j], answer_lines[j + 1 :]
            break
    answer = _body(answer_lines, draft.heading.number + 1)
    extra = _body(extra_lines, 0) if extra_lines else None
    if extra is not None and not extra.text:
        extra = None

    tags: tuple[str, ...] = ()
    if "tags" in options:
        value, where = options["tags"]
        raw = value.split()
        tags = tuple(t for t in raw if check_tag(t, where) is None)
        problems += [d for t in raw if (d := check_tag(t, where)) is not None]
    cloze = _bool(options["cloze"][0], "cloze", options["cloze"][1], problems) if "cloze" in options else False
    reverse = (
        _bool(options["reverse"][0], "reverse", options["reverse"][1], problems)
        if "reverse" in options
        else front.reverse
    )
    tts = front.tts
    if "tts" in options:
        parsed_tts = parse_tts(options["tts"][0])
        if parsed_tts is None:
            problems.append(
                Diagnostic(
                    options["tts"][1],
                    "note-option-invalid",
                    f"'tts' must name a language, not {options['tts'][0]!r}",
                    TTS_HINT,
                )
            )
            return None
        tts = parsed_tts
    ignore = frozenset(options.get("ignore", ("", here))[0].replace(",", " ").split())
    if cloze:
        for key in ("reverse", "type-in"):
            if key in options:
                problems.append(
                    Diagnostic(
                        options[key][1],
                        "note-option-invalid",
                        f"'{key}' has no meaning for a cloze note",
                        f"remove <!-- {key} -->",
                    )
                )
                return None

    if not answer.text and not cloze:
        problems.append(
            Diagnostic(
                here, "answer-empty", f"note '{note_id}' has an empty answer", "write the answer below the id comment"
            )
        )
        return None
    if cloze and not CLOZE_RE.search(answer.text):
        problems.append(
            Diagnostic(
                here,
                "cloze-without-deletions",
                f"cloze note '{note_id}' has no {{{{c1::...}}}} deletion",
                "mark the hidden parts as {{c1::text}}, {{c2::text}} ...",
            )
        )
        return None
    if not cloze:
        for part in (answer, extra):
            m = CLOZE_RE.search(part.text) if part else None
            if part and m:
                problems.append(
                    Diagnostic(
                        part.location(path, m.start()),
                        "cloze-not-enabled",
                        "cloze deletion in a note that is not a cloze note",
                        "add <!-- cloze --> under the id, or write the braces as \\{\\{ ",
                    )
                )
                return None
    return NOTE_CLASSES[front.kind](
        id=note_id,
        prompt=draft.prompt,
        answer=answer,
        location=here,
        extra=extra,
        tags=tags,
        aliases=aliases,
        source=options.get("source", ("", here))[0],
        cloze=cloze,
        reverse=reverse,
        type_in=options.get("type-in", ("", here))[0],
        ignore=ignore,
        guid=guid,
        restore=parsed_id.restore,
        id_location=options["id"][1],
        tts=tts,
    )


def _body(lines: list[_Line], fallback_line: int) -> Body:
    """Join lines into a Body, dropping blank lines at both ends but keeping the start line."""
    start, end = 0, len(lines)
    while start < end and not lines[start].text.strip():
        start += 1
    while end > start and not lines[end - 1].text.strip():
        end -= 1
    kept = lines[start:end]
    return Body("\n".join(x.text for x in kept), kept[0].number if kept else fallback_line)


# Parses one category file like ``parse_category``; the build passes one that remembers unchanged files.
FileParser = Callable[[bytes, Path], tuple[Category | None, list[Diagnostic]]]


def parse_deck(
    config: DeckConfig,
    root: Path,
    files: Mapping[Path, bytes],
    parse_file: FileParser | None = None,
    reserved: Set[str] = frozenset(),
) -> tuple[Deck, list[Diagnostic]]:
    """Parse every category file into a deck of the notes that parsed, plus every problem found.

    A note with an error is left out of the deck, so callers must treat any error diagnostic as
    fatal for building (``deckgen check`` reports them; ``deckgen build`` refuses to write).
    Files in sub-folders are subdecks of their folder's subdeck; ``_deck.md`` files (folder name,
    order, description) are read here too. ``reserved`` holds ids that suggestions must avoid
    (every id the lock remembers).
    """
    problems: list[Diagnostic] = []
    folders = _parse_folders(root, files, problems)
    ordered: list[tuple[tuple[tuple[bool, int, str], ...], Category]] = []
    for path in sorted(p for p in files if p.name != FOLDER_FILE):
        category, found = (parse_file or parse_category)(files[path], path)
        problems += found
        if category is None:
            continue
        chain = _folder_chain(root, path)
        key = tuple(_order_key(folders[f].order, f.name) for f in chain)
        key += (_order_key(category.order, path.name),)
        if chain:
            category = replace(category, name=f"{folders[chain[-1]].name}::{category.name}")
        ordered.append((key, category))
    ordered.sort(key=lambda item: item[0])
    categories = [c for _, c in ordered]
    problems += _check_unique(categories)
    problems = _suggest_free_ids(categories, problems, reserved)
    folder_decks = tuple(folders[f] for f in sorted(folders, key=lambda f: (len(f.parts), f.parts)))
    return Deck(config=config, root=root, categories=tuple(categories), folders=folder_decks), problems


def _order_key(order: int | None, name: str) -> tuple[bool, int, str]:
    """Explicit ``order`` first (ascending), then by file or folder name."""
    return (order is None, order or 0, name)


def _folder_chain(root: Path, path: Path) -> list[Path]:
    """The folders between ``root`` and ``path``, outermost first, relative to ``root``."""
    try:
        parts = path.parent.relative_to(root).parts
    except ValueError:
        return []
    return [Path(*parts[: i + 1]) for i in range(len(parts))]


def _parse_folders(root: Path, files: Mapping[Path, bytes], problems: list[Diagnostic]) -> dict[Path, FolderDeck]:
    """Every folder below ``root`` that holds a file: its full subdeck name, order and description."""
    folders: dict[Path, FolderDeck] = {}
    relative = {}
    meta = {p: d for p, d in files.items() if p.name == FOLDER_FILE}
    for path in meta:
        try:
            relative[path.parent.relative_to(root)] = path
        except ValueError:
            continue
    wanted = set(relative)
    for path in files:
        wanted.update(_folder_chain(root, path))
    for folder in sorted(wanted, key=lambda f: (len(f.parts), f.parts)):
        meta_path = relative.get(folder)
        leaf, order, intro = deck_name_from_path(root / folder) if folder.parts else "", None, ""
        location = SourceLocation(meta_path or root / folder, 1)
        if meta_path is not None:
            leaf, order, intro = _parse_folder_file(meta[meta_path], meta_path, leaf, problems)
        parent = folders.get(folder.parent) if len(folder.parts) > 1 else None
        name = f"{parent.name}::{leaf}" if parent is not None else leaf
        folders[folder] = FolderDeck(name, location, order, intro)
    return folders


def _parse_folder_file(
    data: bytes, path: Path, default: str, problems: list[Diagnostic]
) -> tuple[str, int | None, str]:
    """A ``_deck.md``: front matter ``deck`` and ``order``, and the description below it."""
    text, found = decode(data, path)
    problems += found
    if text is None:
        return default, None, ""
    lines = text.split("\n")
    fm_text, body_start, fm_problems = _split_front_matter(lines, path)
    problems += fm_problems
    root_folder = not default
    front, front_problems = parse_front_matter(fm_text, path, 1, FOLDER_KEYS, default or "root")
    problems += front_problems
    if root_folder and fm_text and re.search(r"^(deck|order)\s*:", fm_text, re.M):
        problems.append(
            Diagnostic(
                SourceLocation(path, 1),
                "front-matter-invalid",
                "the root folder's _deck.md can only describe the deck",
                "the root deck's name is 'name' in deckgen.toml; remove 'deck' and 'order' here",
            )
        )
    body = "\n".join(lines[body_start:])
    for m in re.finditer(r"^##?[ \t]", body, re.M):
        line = body_start + body.count("\n", 0, m.start()) + 1
        problems.append(
            Diagnostic(
                SourceLocation(path, line),
                "heading-level",
                "a heading in _deck.md, which holds only the folder's description (it would not be a card)",
                "move notes into a category file of the folder",
            )
        )
    return (default if root_folder else front.deck), front.order, body.strip()


def _suggest_free_ids(categories: list[Category], problems: list[Diagnostic], reserved: Set[str]) -> list[Diagnostic]:
    """Give each 'has no id' diagnostic a concrete id that is free across the deck and the lock."""
    taken = {key for c in categories for n in c.notes for key in (n.id, *n.aliases)} | set(reserved)
    missing = [(c.location.path, prompt, line) for c in categories for prompt, line in c.missing_ids]
    free = assign_ids([prompt for _, prompt, _ in missing], taken)
    suggestion = {(path, line): new for (path, _, line), new in zip(missing, free, strict=True)}
    out = []
    for d in problems:
        new = suggestion.get((d.location.path, d.location.line)) if d.rule == "id-missing" else None
        out.append(replace(d, hint=missing_id_hint(new)) if new and "has no id" in d.message else d)
    return out


def parse_deck_strict(config: DeckConfig, root: Path, files: Mapping[Path, bytes]) -> Deck:
    """``parse_deck`` that raises one SourceError holding every error."""
    deck, problems = parse_deck(config, root, files)
    errors = [p for p in problems if p.severity is Severity.ERROR]
    if errors:
        raise SourceError(errors)
    return deck


def _check_unique(categories: list[Category]) -> list[Diagnostic]:
    """Ids (and rename aliases) are unique across the deck; subdeck names across files."""
    problems: list[Diagnostic] = []
    seen: dict[str, SourceLocation] = {}
    for note in (n for c in categories for n in c.notes):
        for key in (note.id, *note.aliases):
            if key in seen:
                problems.append(
                    Diagnostic(
                        note.location,
                        "id-duplicate",
                        f"duplicate id '{key}' (first used at {seen[key]})",
                        "every note needs its own id; pick a new one for this note",
                    )
                )
            else:
                seen[key] = note.location
    decks: dict[str, SourceLocation] = {}
    for category in categories:
        key = category.name.casefold()
        if key in decks:
            problems.append(
                Diagnostic(
                    category.location,
                    "deck-duplicate",
                    f"subdeck '{category.name}' is also defined by {decks[key].path.as_posix()}",
                    "give each file its own 'deck:' name",
                )
            )
        else:
            decks[key] = category.location
    return problems
