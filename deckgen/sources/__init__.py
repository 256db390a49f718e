"""Sources: deckgen.toml and Markdown → the typed model (``model``, ``config``, ``parse``), diagnostics (``check``)."""
