"""deckgen: compile Markdown sources into deterministic Anki decks."""

import time

__version__ = "0.1.0"
IMPORT_STARTED = time.perf_counter()  # benchmarks report the import time of a run (build/timings.py)
