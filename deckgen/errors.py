"""The exception family: every user-facing failure is a DeckgenError; bad input is a SourceError."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

from deckgen.sources.model import SourceLocation


class Severity(Enum):
    ERROR = "error"
    WARNING = "warning"


class DeckgenError(Exception):
    """Base of every error deckgen reports to a user (never a traceback)."""


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One finding about the sources, with its place, rule id and a hint how to fix it."""

    location: SourceLocation
    rule: str
    message: str
    hint: str = ""
    severity: Severity = Severity.ERROR

    def format(self) -> str:
        text = f"{self.location}: {self.severity.value}: {self.message} [{self.rule}]"
        if self.hint:
            text += f"\n    hint: {self.hint}"
        return text

    def to_json(self) -> dict[str, object]:
        return {
            "path": self.location.path.as_posix(),
            "line": self.location.line,
            "col": self.location.col,
            "severity": self.severity.value,
            "rule": self.rule,
            "message": self.message,
            "hint": self.hint,
        }

    def sort_key(self) -> tuple[str, int, int, str]:
        return (str(self.location.path), self.location.line, self.location.col, self.rule)


class SourceError(DeckgenError):
    """One or more problems in the sources; carries every diagnostic of the run."""

    def __init__(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.diagnostics: tuple[Diagnostic, ...] = tuple(sorted(diagnostics, key=Diagnostic.sort_key))
        super().__init__("\n".join(d.format() for d in self.diagnostics))

    @classmethod
    def single(cls, location: SourceLocation, rule: str, message: str, hint: str = "") -> SourceError:
        return cls([Diagnostic(location, rule, message, hint)])


class LockError(DeckgenError):
    """The lock file would change under ``--locked``, or cannot be read."""
