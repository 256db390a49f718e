"""Read notes out of an Anki ``.apkg`` or collection (with the official ``anki`` package) for import.

A package is imported into a throw-away collection (so every package format Anki writes is read
by Anki itself); a collection is copied first, so the user's file is never opened for writing.
Each deck becomes a category: the chosen deck's own notes, and one per subdeck.
"""

from __future__ import annotations

import html
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deckgen.authoring import file_slug
from deckgen.errors import DeckgenError, Diagnostic, Severity
from deckgen.importing.html import field_to_markdown, one_line
from deckgen.importing.model import ImportedCategory, ImportedNote
from deckgen.sources.config import TAG_RE
from deckgen.sources.model import Kind, SourceLocation
from deckgen.sources.parse import ID_RE

if TYPE_CHECKING:
    from anki.collection import Collection
    from anki.notes import Note as AnkiNote

IMAGE_DIR = "images"
SOUND_DIR = "sounds"
ROOT_CATEGORY = "General"  # the subdeck for notes that sit directly in the imported deck
_FIELD_REF_RE = re.compile(r"\{\{(?:[#^/])?(?:[^{}:]*:)*([^{}:]+)\}\}")
_SPECIAL_FIELDS = {"FrontSide", "Tags", "Deck", "Subdeck", "Card", "CardFlag", "Type"}


def _anki() -> Any:
    try:
        import anki.collection
    except ImportError as exc:
        raise DeckgenError("importing Anki decks needs the 'anki' package: pip install 'deckgen[sync]'") from exc
    return anki.collection


@contextmanager
def _package_collection(apkg: Path) -> Iterator[Collection]:
    ac = _anki()
    with tempfile.TemporaryDirectory(prefix="deckgen-import-") as tmp:
        col = ac.Collection(str(Path(tmp) / "collection.anki2"))
        try:
            request = ac.ImportAnkiPackageRequest(
                package_path=str(apkg), options=ac.ImportAnkiPackageOptions(with_scheduling=False)
            )
            try:
                col.import_anki_package(request)
            except Exception as exc:  # Anki raises its own error types for damaged or foreign files
                raise DeckgenError(f"{apkg}: not a package Anki can read: {exc}") from exc
            yield col
        finally:
            col.close()


@contextmanager
def _collection_copy(path: Path) -> Iterator[tuple[Collection, Path]]:
    ac = _anki()
    with tempfile.TemporaryDirectory(prefix="deckgen-import-") as tmp:
        copy = Path(tmp) / "collection.anki2"
        for suffix in ("", "-wal"):
            if Path(f"{path}{suffix}").exists():
                shutil.copyfile(f"{path}{suffix}", f"{copy}{suffix}")
        try:
            col = ac.Collection(str(copy))
        except Exception as exc:  # a locked, damaged or non-collection file
            raise DeckgenError(f"{path}: cannot open the collection (close Anki first?): {exc}") from exc
        try:
            yield col, path.with_suffix(".media")
        finally:
            col.close()


def read_apkg(apkg: Path) -> tuple[list[ImportedCategory], list[Diagnostic]]:
    """Every top-level deck with notes in the package, as categories."""
    with _package_collection(apkg) as col:
        media = Path(col.media.dir())
        roots = sorted({name.split("::")[0] for name, _ in _decks_with_cards(col)})
        categories: list[ImportedCategory] = []
        problems: list[Diagnostic] = []
        for root in roots:
            found, found_problems = _read_deck(col, root, media, apkg)
            categories += found
            problems += found_problems
    return categories, problems


def read_collection(path: Path, deck: str) -> tuple[list[ImportedCategory], list[Diagnostic]]:
    """The deck named ``deck`` (any case) and its subdecks, from a collection file."""
    with _collection_copy(path) as (col, media):
        names = {n.name.casefold(): n.name for n in col.decks.all_names_and_ids()}
        if deck.casefold() not in names:
            known = ", ".join(sorted(names.values()))
            raise DeckgenError(f"{path}: no deck named {deck!r}; decks: {known}")
        return _read_deck(col, names[deck.casefold()], media, path)


def _decks_with_cards(col: Collection) -> list[tuple[str, int]]:
    from anki.decks import DeckId

    return [
        (d.name, d.id)
        for d in col.decks.all_names_and_ids()
        if col.decks.card_count(DeckId(d.id), include_subdecks=False)
    ]


@dataclass(slots=True)
class _Bucket:
    deck: str
    notes: list[ImportedNote] = field(default_factory=list)
    media: dict[str, bytes] = field(default_factory=dict)


def _read_deck(
    col: Collection, root: str, media_dir: Path, where: Path
) -> tuple[list[ImportedCategory], list[Diagnostic]]:
    problems: list[Diagnostic] = []
    buckets: dict[str, _Bucket] = {}
    seen: set[int] = set()
    here = SourceLocation(where, 1)
    for name, did in sorted(_decks_with_cards(col)):
        if name != root and not name.startswith(root + "::"):
            continue
        for nid in sorted(col.find_notes(f"did:{did}")):
            if nid in seen:
                continue
            seen.add(nid)
            note = col.get_note(nid)
            first_card = min(note.cards(), key=lambda c: c.ord)
            deck = col.decks.name(first_card.did)
            rel = deck[len(root) + 2 :] if deck.startswith(root + "::") else ""
            # A nested subdeck keeps its place: A::B becomes the file b.md in the folder a/.
            bucket = buckets.setdefault(rel, _Bucket(rel or ROOT_CATEGORY))
            bucket.notes.append(_convert(col, note, media_dir, bucket.media, here, problems))
    categories = [
        ImportedCategory(
            deck=b.deck,
            stem=file_slug(b.deck.split("::")[-1]),
            notes=tuple(b.notes),
            location=here,
            root=root,
            media=dict(sorted(b.media.items())),
            kind=_common_kind(b.notes),
            tts=_common_tts(b.notes),
        )
        for _, b in sorted(buckets.items())
    ]
    if not categories:
        problems.append(
            Diagnostic(here, "import-nothing-found", f"deck {root!r} has no notes", severity=Severity.WARNING)
        )
    return categories, problems


def _common_kind(notes: list[ImportedNote]) -> str:
    """The kind every note of a subdeck shares, if not question (a category file has one kind)."""
    kinds = {n.kind for n in notes}
    return kinds.pop() if len(kinds) == 1 and kinds != {Kind.QUESTION.value} else ""


def _common_tts(notes: list[ImportedNote]) -> str:
    """The tts setting every note of a subdeck shares: front matter instead of one option per note."""
    settings = {n.tts for n in notes}
    return settings.pop() if len(settings) == 1 else ""


# ``{{tts en_US voices=Apple_Samantha speed=1.1:Front}}`` in a card template: Anki reads the field aloud.
_TEMPLATE_TTS_RE = re.compile(r"\{\{tts\s+([a-z]{2,3}(?:_[A-Za-z]{2,4})?)((?:\s+(?:voices|speed)=[^\s:}]+)*)\s*:")


def _template_tts(templates: list[dict[str, Any]]) -> str:
    for template in templates:
        m = _TEMPLATE_TTS_RE.search(template["qfmt"] + template["afmt"])
        if m:
            return m.group(1) + m.group(2)
    return ""


def _field_refs(template: str) -> list[str]:
    return [m.group(1).strip() for m in _FIELD_REF_RE.finditer(template) if m.group(1).strip() not in _SPECIAL_FIELDS]


def _convert(
    col: Collection,
    note: AnkiNote,
    media_dir: Path,
    media: dict[str, bytes],
    here: SourceLocation,
    problems: list[Diagnostic],
) -> ImportedNote:
    notetype = note.note_type()
    assert notetype is not None
    names = [f["name"] for f in notetype["flds"]]
    templates = notetype["tmpls"]
    cloze = notetype["type"] == 1
    values = dict(zip(names, note.fields, strict=True))

    def media_ref(folder: str) -> Callable[[str], str | None]:
        def ref(name: str) -> str | None:
            try:
                media[f"{folder}/{name}"] = (media_dir / name).read_bytes()
            except OSError:
                problems.append(
                    Diagnostic(
                        here,
                        "import-media-missing",
                        f"note {note.guid!r} uses {name!r}, which is not in the media; reference left out",
                        f"add the file as {folder}/{name} beside the category file and reference it again",
                        Severity.WARNING,
                    )
                )
                return None
            return f"{folder}/{name}"

        return ref

    def convert(field_html: str) -> str:
        return field_to_markdown(field_html, media_ref(IMAGE_DIR), media_ref(SOUND_DIR)).markdown

    if notetype["name"].startswith("deckgen ") and {"Prompt", "Id", "Extra", "Source"} <= set(names):
        return _from_deckgen(note, values, cloze, convert, here)
    front_refs = [n for n in _field_refs(templates[0]["qfmt"]) if n in values]
    back_refs = [n for n in _field_refs(templates[0]["afmt"]) if n in values]
    main = front_refs[0] if front_refs else names[0]
    if cloze:
        answer_field, prompt = main, ""
    else:
        answer_field = next((n for n in back_refs if n != main), names[1] if len(names) > 1 else main)
        prompt = one_line(convert(values[main]))
    answer = convert(values[answer_field])
    rest = [n for n in names if n not in (main, answer_field) and values[n].strip()]
    extras = [convert(values[n]) for n in rest]
    # Fields beyond the two a card shows go to Extra, each under its name (Anki's "Back Extra" needs none).
    extras = [t if n in ("Back Extra", "Extra") else f"**{n}:**\n\n{t}" for n, t in zip(rest, extras, strict=True)]
    if cloze:
        prompt = _cloze_prompt(answer)
    type_in = ""
    if not cloze and "{{type:" in templates[0]["qfmt"]:
        type_in = _plain(values[answer_field])
    return ImportedNote(
        prompt=prompt or "(no prompt)",
        answer=answer or "*(empty in Anki)*",
        location=here,
        extra="\n\n".join(extras),
        tags=tuple(t for t in note.tags if TAG_RE.match(t)),
        guid=note.guid,
        cloze=cloze,
        reverse=not cloze and len(templates) > 1 and any(c.ord == 1 for c in note.cards()),
        type_in=type_in,
        tts=_template_tts(templates),
    )


def _plain(field_html: str) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", field_html))).strip()


_TTS_TAG_RE = re.compile(r"\[anki:tts(?: lang=(\S+))?([^\]]*)\].*?\[/anki:tts\]", re.S)


def _from_deckgen(
    note: AnkiNote, values: dict[str, str], cloze: bool, convert: Callable[[str], str], here: SourceLocation
) -> ImportedNote:
    """A note of a deckgen-built deck: its fields map back one to one, its id and source included."""
    text = {k: _TTS_TAG_RE.sub("", v) for k, v in values.items()}  # re-made from the tts option on build
    spoken = _TTS_TAG_RE.search(values["Prompt"])
    answer = convert(text["Text" if cloze else "Answer"])
    prompt = one_line(convert(text["Prompt"]))
    return ImportedNote(
        prompt=prompt or (_cloze_prompt(answer) if cloze else "(no prompt)"),
        answer=answer or "*(empty in Anki)*",
        location=here,
        extra=convert(text["Extra"]),
        # deckgen adds category:: and kind:: tags itself on every build
        tags=tuple(t for t in note.tags if TAG_RE.match(t) and not t.startswith(("category::", "kind::"))),
        guid=note.guid,
        id=values["Id"] if ID_RE.match(values["Id"]) else "",
        source=_plain(values["Source"]),
        kind={k.label.lower(): k.value for k in Kind}.get(values.get("Kind", "").lower(), ""),
        cloze=cloze,
        reverse=bool(values.get("Reverse")),
        type_in=_plain(values.get("TypeIn", "")),
        tts=(spoken.group(1) or "") + spoken.group(2) if spoken else "",
    )


def _cloze_prompt(text: str) -> str:
    """A heading for a cloze note (deckgen shows it above the text): its words with the gaps blanked."""
    plain = re.sub(r"\{\{c\d+::.*?\}\}", "[…]", one_line(text), flags=re.S)
    plain = re.sub(r"!\[[^\]]*\]\([^)]*\)|\[sound:[^\]]*\]|<br>", " ", plain)
    words = plain.split()
    return " ".join(words[:12]) + (" …" if len(words) > 12 else "")
