"""Find an Anki collection from a path or a profile name, and open it (the ``anki`` package, lazily).

Anki desktop keeps each profile in ``<base>/<profile>/collection.anki2``; the base folder is
``$ANKI_BASE`` if set, else ``%APPDATA%\\Anki2`` on Windows, ``~/Library/Application Support/Anki2``
on macOS and ``$XDG_DATA_HOME/Anki2`` (default ``~/.local/share/Anki2``) elsewhere, as Anki's
own ``aqt/profiles.py`` decides.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from deckgen.errors import DeckgenError

if TYPE_CHECKING:
    from anki.collection import Collection

COLLECTION_FILE = "collection.anki2"


class CollectionError(DeckgenError):
    """The collection cannot be found, opened or is in use."""


def anki_base(environ: dict[str, str] | None = None, platform: str = sys.platform) -> Path:
    """Anki's data folder (holding one folder per profile) on this platform."""
    env = os.environ if environ is None else environ
    if env.get("ANKI_BASE"):
        return Path(env["ANKI_BASE"])
    if platform.startswith("win"):
        return Path(env.get("APPDATA", str(Path.home() / "AppData" / "Roaming"))) / "Anki2"
    if platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "Anki2"
    return Path(env.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "Anki2"


def locate_collection(value: str, base: Path | None = None) -> Path:
    """``value`` is a ``.anki2`` file, a profile folder, or the name of a profile in Anki's data folder."""
    given = Path(value).expanduser()
    if given.is_file():
        return given
    if given.is_dir() and (given / COLLECTION_FILE).is_file():
        return given / COLLECTION_FILE
    base = anki_base() if base is None else base
    profile = base / value / COLLECTION_FILE
    if os.sep not in value and "/" not in value and profile.is_file():
        return profile
    profiles = sorted(p.parent.name for p in base.glob(f"*/{COLLECTION_FILE}")) if base.is_dir() else []
    known = f"; profiles in {base}: {', '.join(profiles)}" if profiles else f"; no Anki profiles in {base}"
    raise CollectionError(f"no Anki collection at {given} and no profile named {value!r}{known}")


def backup_folder(path: Path) -> Path:
    """Where Anki desktop keeps the profile's backups: ``<profile>/backups``."""
    return path.parent / "backups"


def open_collection(path: Path) -> Collection:
    """Open ``path`` with the official ``anki`` library; refuse clearly when Anki holds it open."""
    try:
        from anki.collection import Collection
        from anki.errors import DBError
    except ImportError as exc:
        raise CollectionError("deckgen sync needs the anki package: pip install 'deckgen[sync]'") from exc
    try:
        return Collection(str(path))
    except DBError as exc:
        # Anki opens collections with SQLite's exclusive locking mode: a second open fails at once
        # with this message (rslib's "collection already open" error).
        if "already open" in str(exc).lower() or "locked" in str(exc).lower():
            raise CollectionError(
                f"{path} is in use ({exc}): close Anki (or switch it to another profile via File → Switch "
                "Profile), wait for its media sync to finish, and run deckgen sync again; nothing was changed"
            ) from exc
        raise CollectionError(f"cannot open {path} as an Anki collection: {exc}") from exc
