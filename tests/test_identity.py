"""Deck-scoped identity: the deck uuid, GUIDs the lock keeps through renames, retired ids, pinned guids."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from click.testing import CliRunner

from conftest import SAMPLE
from deckgen.cli import main
from deckgen.sources.config import load_config


def test_missing_uuid_is_an_error_whose_hint_prints_a_fresh_line(tmp_path: Path) -> None:
    src = tmp_path / "source"
    shutil.copytree(SAMPLE, src)
    toml = src / "deckgen.toml"
    toml.write_text('name = "Sample Deck"\n', encoding="utf-8")
    result = CliRunner().invoke(main, ["build", str(src), "-o", str(tmp_path / "out")])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"{toml.as_posix()}:1:1: error: deckgen.toml has no 'uuid'" in result.output
    assert "[uuid-missing]" in result.output
    (line,) = re.findall(r'uuid = "[0-9a-f-]{36}"', result.output)
    toml.write_text(f'name = "Sample Deck"\n{line}\n', encoding="utf-8")
    assert CliRunner().invoke(main, ["build", str(src), "-o", str(tmp_path / "out")]).exit_code == 0


def test_uuid_is_validated_and_normalised(tmp_path: Path) -> None:
    path = tmp_path / "deckgen.toml"
    config, problems = load_config('name = "D"\nuuid = "F28934B4A71F4547AC1C6C903FF36B61"\n', path)
    assert config is not None and config.uuid == "f28934b4-a71f-4547-ac1c-6c903ff36b61" and problems == []
    config, problems = load_config('name = "D"\n\nuuid = "not-a-uuid"\n', path)
    assert config is None and [(str(p.location), p.rule) for p in problems] == [
        (f"{path.as_posix()}:3:1", "config-invalid")
    ]
    assert 'uuid = "' in problems[0].hint
