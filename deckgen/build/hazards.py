"""Import hazards: edits that Anki's importer would not apply, found by comparing a note with its lock entry.

Anki updates an existing note's fields and tags on import, but it never changes a note's notetype
(the note is reported "conflicting" and keeps its old text forever), never moves existing cards to
another deck, and never deletes a card whose template no longer produces anything (it stays, blank).
``build`` reports these as an error or warnings; ``deckgen sync`` applies them to a collection instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum

from deckgen.anki import notetypes
from deckgen.errors import Diagnostic, Severity
from deckgen.sources.model import Note, SourceLocation


class HazardKind(Enum):
    NOTETYPE_CHANGED = "notetype-changed"  # basic ↔ cloze
    DECK_MOVED = "deck-moved"  # another file or a renamed subdeck
    CARDS_REMOVED = "cards-removed"  # reverse, or a cloze number, gone


@dataclass(frozen=True, slots=True)
class Hazard:
    """One note's edit that a plain re-import would not carry into users' collections."""

    kind: HazardKind
    note_id: str
    guid: str
    location: SourceLocation
    old: str  # notetype ids (NOTETYPE_CHANGED, CARDS_REMOVED: the same on both sides) or deck names
    new: str
    cards: tuple[int, ...] = ()  # the card ords that are gone (CARDS_REMOVED)


def find_hazards(
    note: Note,
    guid: str,
    old_parts: Mapping[str, str],
    old_cards: tuple[int, ...],
    parts: Mapping[str, str],
    cards: tuple[int, ...],
) -> list[Hazard]:
    """The hazards of rebuilding ``note`` (recorded with ``old_parts``/``old_cards``) as ``parts``/``cards``."""
    where = note.id_location or note.location
    found = []
    old_type, new_type = old_parts.get("notetype", ""), parts.get("notetype", "")
    if old_type != new_type:
        found.append(Hazard(HazardKind.NOTETYPE_CHANGED, note.id, guid, where, old_type, new_type))
    elif old_cards != cards and (gone := tuple(sorted(set(old_cards) - set(cards)))):
        found.append(Hazard(HazardKind.CARDS_REMOVED, note.id, guid, where, old_type, new_type, gone))
    old_deck, new_deck = old_parts.get("deck", ""), parts.get("deck", "")
    if old_deck != new_deck:
        found.append(Hazard(HazardKind.DECK_MOVED, note.id, guid, where, old_deck, new_deck))
    return found


def notetype_label(notetype_id: str) -> str:
    by_id = {str(nt.id): nt for nt in notetypes.all_notetypes()}
    nt = by_id.get(notetype_id)
    return (
        "a cloze note" if nt is not None and nt.is_cloze else "a basic note" if nt is not None else "another notetype"
    )


def card_names(hazard: Hazard) -> str:
    """``Reverse`` for a basic note's card 1, ``c3`` for a cloze note's card 2."""
    is_cloze = hazard.new == str(notetypes.cloze().id)
    names = [f"c{o + 1}" if is_cloze else _template_name(o) for o in hazard.cards]
    return ", ".join(names)


def _template_name(ord_: int) -> str:
    templates = notetypes.basic().templates
    return templates[ord_].name if ord_ < len(templates) else f"card {ord_ + 1}"


def _listed(ids: list[str], limit: int = 8) -> str:
    shown = ", ".join(f"'{i}'" for i in ids[:limit])
    return shown + (f" and {len(ids) - limit} more" if len(ids) > limit else "")


def hazard_diagnostics(hazards: Iterable[Hazard], *, accept_notetype_changes: bool = False) -> list[Diagnostic]:
    """Notetype changes as errors (unless a caller such as ``deckgen sync`` applies them), the rest as
    warnings saying what to do in Anki."""
    problems: list[Diagnostic] = []
    moves: dict[tuple[str, str], list[Hazard]] = {}
    for h in hazards:
        if h.kind is HazardKind.NOTETYPE_CHANGED and not accept_notetype_changes:
            problems.append(
                Diagnostic(
                    h.location,
                    "notetype-changed",
                    f"note '{h.note_id}' was built as {notetype_label(h.old)} and is now {notetype_label(h.new)}; "
                    "Anki's importer cannot change a note's type: it would report the note 'conflicting' on "
                    "every import and keep the old text",
                    "either give the note a new id (a new note; delete the old one in Anki, its reviews go "
                    "with it), or apply the change with 'deckgen sync', which converts the note in the "
                    "collection keeping its scheduling",
                )
            )
        elif h.kind is HazardKind.CARDS_REMOVED:
            names = card_names(h)
            problems.append(
                Diagnostic(
                    h.location,
                    "cards-removed",
                    f"note '{h.note_id}' no longer has card(s) {names}; Anki keeps cards it already has, "
                    "so users would see them as blank or error cards",
                    "after importing, run Tools > Empty Cards in Anki (or 'deckgen sync') to delete them",
                    Severity.WARNING,
                )
            )
        elif h.kind is HazardKind.DECK_MOVED:
            moves.setdefault((h.old, h.new), []).append(h)
    for (old, new), group in moves.items():
        ids = [h.note_id for h in group]
        by_id = "(" + " OR ".join(f'"Id:{i}"' for i in ids) + ")" if len(ids) <= 8 else ""
        query = f'"deck:{old}" {by_id}'.strip()
        problems.append(
            Diagnostic(
                min((h.location for h in group), key=lambda loc: (str(loc.path), loc.line)),
                "deck-moved",
                f"{len(ids)} note(s) moved from '{old}' to '{new}' ({_listed(ids)}); Anki's importer updates "
                "them but leaves their existing cards in the old deck",
                f"after importing, in Anki's browser search {query}, select all, Change Deck to '{new}' "
                "(or rename the deck in Anki first); 'deckgen sync' moves them itself",
                Severity.WARNING,
            )
        )
    return problems
