"""Anki: rendered fields → Anki objects (notetypes, the ``.apkg`` package)."""
