"""A user's own Anki deck, made with the real ``anki`` package: what ``deckgen import`` starts from."""

from __future__ import annotations

import base64
from pathlib import Path

from anki.collection import Collection, DeckIdLimit, ExportAnkiPackageOptions

# A 1x1 PNG and a few bytes standing in for an MP3 (Anki copies media without decoding it).
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
MP3 = b"ID3\x03\x00\x00\x00\x00\x00\x0f" + b"\x00" * 32

ROOT = "Physics"
BASIC = [  # (subdeck, front, back, tags)
    (
        "Mechanics",
        "What does Newton's second law state?",
        "\\(F = m a\\), with <b>net</b> force \\(F\\)",
        ["mechanics"],
    ),
    ("Mechanics", "Unit of force?", "<div>The newton:</div><div>\\[ 1\\,N = 1\\,kg\\,m/s^2 \\]</div>", ["units", "si"]),
    ("Optics", "What does a converging lens do?", 'Focuses parallel rays:<br><img src="lens diagram.png">', ["optics"]),
    ("Mechanics::Dynamics", "What is momentum?", 'Mass times velocity: <img src="lens diagram.png">', ["dynamics"]),
    ("", "Speed of light in vacuum?", "About 3 &times; 10<sup>8</sup> m/s, costs $0 to remember [sound:c.mp3]", []),
]
REVERSED = [  # (subdeck, front, back, tags): "Basic (and reversed card)"
    ("Optics", "Refraction", "The bending of light as it passes from one medium into another", ["optics"]),
]
TYPED = [  # (subdeck, front, back, tags): "Basic (type in the answer)"
    ("Mechanics", "SI unit of energy?", "joule", ["units"]),
]
CLOZE = [  # (subdeck, text, back extra, tags)
    (
        "Mechanics",
        "Kinetic energy is {{c1::\\(\\tfrac12 m v^2\\)}} and momentum is {{c2::\\(m v\\)}}.",
        "Both use mass.",
        ["energy"],
    ),
]


def add_user_deck(col: Collection) -> None:
    """Basic and Cloze notes in ``Physics`` and two subdecks, with an image and a sound."""
    col.media.write_data("lens diagram.png", PNG)
    col.media.write_data("c.mp3", MP3)
    basic = col.models.by_name("Basic")
    reversed_ = col.models.by_name("Basic (and reversed card)")
    typed = col.models.by_name("Basic (type in the answer)")
    cloze = col.models.by_name("Cloze")
    assert basic is not None and cloze is not None and reversed_ is not None and typed is not None
    # the user's reversed notetype reads its front aloud (Anki's {{tts}} template filter)
    reversed_["tmpls"][0]["qfmt"] += "{{tts en_US speed=0.9:Front}}"
    col.models.update_dict(reversed_)
    kinds = [(basic, BASIC), (reversed_, REVERSED), (typed, TYPED)]
    for notetype, sub, front, back, tags in [(nt, *n) for nt, notes in kinds for n in notes]:
        did = col.decks.id(f"{ROOT}::{sub}" if sub else ROOT)
        assert did is not None
        note = col.new_note(notetype)
        note["Front"], note["Back"] = front, back
        note.tags = tags
        col.add_note(note, did)
    for sub, text, extra, tags in CLOZE:
        did = col.decks.id(f"{ROOT}::{sub}")
        assert did is not None
        note = col.new_note(cloze)
        note["Text"], note["Back Extra"] = text, extra
        note.tags = tags
        col.add_note(note, did)


def export_deck(col: Collection, out: Path, deck: str = ROOT) -> Path:
    did = col.decks.id_for_name(deck)
    assert did is not None
    options = ExportAnkiPackageOptions(with_scheduling=True, with_deck_configs=False, with_media=True, legacy=False)
    col.export_anki_package(out_path=str(out), options=options, limit=DeckIdLimit(did))
    return out


def change_notetype_by_hand(
    col: Collection, old: str, new: str, fields: dict[str, str], cards: tuple[int, ...] = (0,)
) -> int:
    """What the README asks of the user in Anki: Browse → select the notes → Notes → Change Note Type…,
    mapping each new field to an old one (``fields``: new name → old name) and the card types in
    order (``cards``: old card ord for each new card type). Returns how many notes changed."""
    old_nt, new_nt = col.models.by_name(old), col.models.by_name(new)
    assert old_nt is not None and new_nt is not None
    info = col.models.change_notetype_info(old_notetype_id=old_nt["id"], new_notetype_id=new_nt["id"])
    request = info.input
    note_ids = col.models.nids(old_nt["id"])
    request.note_ids.extend(note_ids)
    old_names = [f["name"] for f in old_nt["flds"]]
    del request.new_fields[:]
    request.new_fields.extend(old_names.index(fields[f["name"]]) if f["name"] in fields else -1 for f in new_nt["flds"])
    if not request.is_cloze:
        del request.new_templates[:]
        request.new_templates.extend([*cards, *[-1] * (len(new_nt["tmpls"]) - len(cards))])
    col.models.change_notetype_of_notes(request)
    return len(note_ids)
