"""Allow ``python -m deckgen``."""

from deckgen.cli import run

if __name__ == "__main__":
    run()
