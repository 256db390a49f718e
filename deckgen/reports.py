"""What commands report, as plain data: the ``--format json`` documents and the summary lines.

The JSON shapes are specified by ``deckgen/data/output.schema.json`` (tests validate against it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from deckgen.authoring import Count, Stats
from deckgen.build.lock import LockDiff
from deckgen.build.pipeline import BuildResult
from deckgen.errors import Diagnostic, Severity

SCHEMA_VERSION = 1
NAMES_SHOWN = 3  # a summary line names this many notes, then gives a count


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' * (n != 1)}"


def named(ids: Sequence[str], limit: int = NAMES_SHOWN) -> str:
    """``(a, b, c and 4 more)`` — the first few ids of a list, then how many are left; '' when empty."""
    if not ids:
        return ""
    shown = ", ".join(ids[:limit])
    more = f" and {len(ids) - limit} more" if len(ids) > limit else ""
    return f" ({shown}{more})"


def diff_line(diff: LockDiff) -> str:
    """``1 added (x), 2 changed (a, b), 0 removed, 7 unchanged``: counts with the notes named."""
    parts = [
        f"{len(diff.added)} added{named(diff.added)}",
        f"{len(diff.changed)} changed{named([c.id for c in diff.changed])}",
        f"{len(diff.removed)} removed{named(diff.removed)}",
    ]
    if diff.renamed:
        parts.append(f"{len(diff.renamed)} renamed{named([c.id for c in diff.renamed])}")
    return ", ".join(parts) + f", {diff.unchanged} unchanged"


def failure_line(diagnostics: Sequence[Diagnostic], strict: bool) -> str:
    """``2 errors``, or under --strict ``1 error, 3 warnings treated as errors (--strict)``."""
    errors = sum(d.severity is Severity.ERROR for d in diagnostics)
    warnings = len(diagnostics) - errors
    if not warnings:
        return plural(errors, "error")
    treated = f"{plural(warnings, 'warning')} treated as errors{' (--strict)' if strict else ''}"
    return f"{plural(errors, 'error')}, {treated}" if errors else treated


def check_json(diagnostics: Sequence[Diagnostic], strict: bool) -> dict[str, Any]:
    errors = sum(d.severity is Severity.ERROR for d in diagnostics)
    warnings = len(diagnostics) - errors
    return {
        "version": SCHEMA_VERSION,
        "command": "check",
        "diagnostics": [d.to_json() for d in diagnostics],
        "summary": {
            "errors": errors,
            "warnings": warnings,
            "strict": strict,
            "ok": not (errors or (strict and warnings)),
        },
    }


def diff_json(result: BuildResult) -> dict[str, Any]:
    diff = result.compiled.diff
    renamed_from = {c.id: c.old_id for c in diff.renamed}
    return {
        "version": SCHEMA_VERSION,
        "command": "diff",
        "deck": result.compiled.deck.name,
        "subdecks": [{"name": name, "notes": notes, "cards": cards} for name, notes, cards in result.subdecks],
        "added": list(diff.added),
        "changed": [
            {"id": c.id, "fields": list(c.fields), "renamed_from": renamed_from.get(c.id)} for c in diff.changed
        ],
        "removed": list(diff.removed),
        "renamed": [{"id": c.id, "renamed_from": c.old_id} for c in diff.renamed],
        "orphans": list(diff.orphans),
        "warnings": [d.to_json() for d in result.compiled.warnings],
        "summary": {
            "added": len(diff.added),
            "changed": len(diff.changed),
            "removed": len(diff.removed),
            "renamed": len(diff.renamed),
            "unchanged": diff.unchanged,
            "orphans": len(diff.orphans),
            "notes": sum(n for _, n, _ in result.subdecks),
            "cards": sum(c for _, _, c in result.subdecks),
        },
    }


def _counts(rows: Sequence[Count], cards: bool = True) -> list[dict[str, Any]]:
    return [{"name": r.name, "notes": r.notes, **({"cards": r.cards} if cards else {})} for r in rows]


def stats_json(deck_name: str, result: Stats) -> dict[str, Any]:
    return {
        "version": SCHEMA_VERSION,
        "command": "stats",
        "deck": deck_name,
        "subdecks": _counts(result.subdecks),
        "notetypes": _counts(result.notetypes),
        "kinds": _counts(result.kinds),
        "tags": _counts(result.tags, cards=False),
        "summary": {
            "notes": result.notes,
            "cards": result.cards,
            "subdecks": len(result.subdecks),
            "tags_shown": len(result.tags),
        },
    }
