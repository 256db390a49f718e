"""Notetypes: the schema Anki matches on is frozen per model id; the CSS stays night-mode and phone safe.

The golden file keeps every model id deckgen ever shipped with its fields and template names. A
schema change under an existing id fails here: Anki would import the changed notetype as a "+"
copy and stop updating users' notes. Give the notetype a new model id instead, then record it with

    DECKGEN_UPDATE_GOLDEN=1 pytest tests/test_notetypes.py

(which only ever adds ids; it refuses to rewrite the schema of an id already recorded).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from pygments.styles import get_style_by_name

from deckgen.anki import notetypes
from deckgen.preview.page import parse_template

GOLDEN = Path(__file__).parent / "data" / "notetype_schema.json"


def _schemas() -> dict[str, dict[str, object]]:
    return {
        str(nt.id): {
            "cloze": nt.is_cloze,
            "fields": list(nt.fields),
            "templates": [t.name for t in nt.templates],
        }
        for nt in notetypes.all_notetypes()
    }


def _update_golden(current: dict[str, dict[str, object]]) -> None:
    recorded = json.loads(GOLDEN.read_text(encoding="utf-8")) if GOLDEN.exists() else {}
    for model_id, schema in current.items():
        if model_id in recorded and recorded[model_id] != schema:
            raise AssertionError(f"model id {model_id} already shipped with another schema; use a new id")
        recorded[model_id] = schema
    GOLDEN.write_text(json.dumps(recorded, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def test_schema_of_every_model_id_matches_the_golden_file() -> None:
    current = _schemas()
    if os.environ.get("DECKGEN_UPDATE_GOLDEN") == "1":
        _update_golden(current)
    recorded = json.loads(GOLDEN.read_text(encoding="utf-8"))
    for model_id, schema in current.items():
        assert model_id in recorded, f"new model id {model_id}: record it with DECKGEN_UPDATE_GOLDEN=1"
        assert schema == recorded[model_id], (
            f"the fields or templates of model id {model_id} changed: Anki would duplicate the notetype "
            "on import. Keep the schema (there are spare fields) or give the notetype a new model id."
        )


def test_model_ids_and_field_lists_are_the_frozen_constants() -> None:
    assert (notetypes.basic().id, notetypes.cloze().id) == (1738425901, 1738425902)
    assert notetypes.BASIC_FIELDS == ("Prompt", "Answer", "Extra", "Source", "Kind", "Reverse", "TypeIn", "Id", "Spare")
    assert notetypes.CLOZE_FIELDS == ("Text", "Prompt", "Extra", "Source", "Kind", "Id", "Spare")
    assert len({nt.id for nt in notetypes.all_notetypes()}) == 2


def _template_fields(source: str) -> set[str]:
    return {m.strip().split(":")[-1].lstrip("#^/") for m in re.findall(r"\{\{(.*?)\}\}", source)} - {"FrontSide"}


@pytest.mark.parametrize("nt", notetypes.all_notetypes(), ids=lambda nt: nt.name)
def test_templates_parse_and_use_only_their_own_fields(nt: notetypes.NoteType) -> None:
    for template in nt.templates:
        for side in (template.front, template.back):
            parse_template(side)  # balanced sections, known filters
            assert _template_fields(side) <= set(nt.fields)
    front_fields = _template_fields(nt.templates[0].front)
    assert ("Text" if nt.is_cloze else "Prompt") in front_fields


def test_reverse_card_exists_only_when_the_reverse_field_is_set() -> None:
    reverse = notetypes.basic().templates[1].front
    assert reverse.startswith("{{#Reverse}}") and reverse.endswith("{{/Reverse}}")


def test_css_names_both_night_mode_classes_on_the_card_element() -> None:
    css = notetypes.card_css()
    # Anki desktop and AnkiDroid set "nightMode night_mode" on <body class="card ...">, AnkiMobile
    # "nightMode"; AnkiDroid inverts the colours of cards whose CSS mentions neither class.
    for selector in (".card.nightMode", ".card.night_mode", ".nightMode .card", ".night_mode .card"):
        assert selector in css
    assert ".nightMode .highlight .k" in css and ".night_mode .highlight .k" in css


def test_css_uses_relative_font_sizes_and_no_fixed_widths() -> None:
    base = (Path(notetypes.__file__).parents[1] / "data" / "cards.css").read_text(encoding="utf-8")
    assert not re.search(r"font-size:\s*\d+(\.\d+)?px", base)
    assert not re.search(r"(?<!max-)width:\s*\d{3,}px", base)


def _luminance(hex_color: str) -> float:
    hex_color = hex_color.lstrip("#")
    if len(hex_color) == 3:
        hex_color = "".join(c * 2 for c in hex_color)
    channels = [int(hex_color[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def _contrast(a: str, b: str) -> float:
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


@pytest.mark.parametrize("style_name", [notetypes.PYGMENTS_LIGHT, notetypes.PYGMENTS_DARK])
def test_every_code_token_colour_meets_wcag_aa_on_its_theme_background(style_name: str) -> None:
    style = get_style_by_name(style_name)
    background = style.background_color
    low = [
        (str(token), spec["color"], round(_contrast(spec["color"], spec["bgcolor"] or background), 2))
        for token, spec in style
        if spec["color"] and "Whitespace" not in str(token)
    ]
    assert [entry for entry in low if entry[2] < 4.5] == []
