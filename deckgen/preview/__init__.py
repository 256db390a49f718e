"""Preview: every card of a deck on one static HTML page, rendered as Anki renders it."""
