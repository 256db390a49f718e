"""Render: model values → the HTML fields Anki shows (Markdown, math, images, sanitising)."""
