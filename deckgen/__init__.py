"""deckgen: compile Markdown sources into deterministic Anki decks."""

__version__ = "0.1.0"
