"""What commands say: JSON documents valid against the published schema, named changes, accurate summaries."""

from __future__ import annotations

import json
import re
import shutil
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner, Result

from deckgen.cli import main

SCHEMA: dict[str, Any] = json.loads(resources.files("deckgen").joinpath("data/output.schema.json").read_text("utf-8"))
README = Path(__file__).parent.parent / "README.md"


def run(*args: str) -> Result:
    result = CliRunner().invoke(main, list(args))
    assert "Traceback" not in result.output
    return result


def valid(document: Any, command: str) -> dict[str, Any]:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    jsonschema.validate(document, SCHEMA)  # one of the three shapes …
    jsonschema.validate(document, {**SCHEMA, "oneOf": [{"$ref": f"#/$defs/{command}"}]})  # … and the right one
    assert isinstance(document, dict)
    return document


def test_check_json_has_diagnostics_and_a_summary(sample: Path) -> None:
    clean = valid(json.loads(run("check", str(sample), "--format", "json").stdout), "check")
    assert clean["summary"] == {"errors": 0, "warnings": 0, "strict": False, "ok": True}
    (sample / "bad.md").write_text("## No id?\n\nText\n\n## Statement\n<!-- id: st -->\n\nText.\n", encoding="utf-8")
    result = run("check", str(sample), "--format", "json", "--strict")
    doc = valid(json.loads(result.stdout), "check")
    assert result.exit_code == 1
    assert doc["summary"] == {"errors": 1, "warnings": 1, "strict": True, "ok": False}
    assert [(d["line"], d["rule"]) for d in doc["diagnostics"]] == [(1, "id-missing"), (5, "prompt-not-question")]


def test_diff_json_lists_changes_and_a_summary(sample: Path, tmp_path: Path) -> None:
    assert run("build", str(sample)).exit_code == 0
    general = sample / "general.md"
    general.write_text(general.read_text(encoding="utf-8").replace("Python for modelling", "Python"), "utf-8")
    (sample / "tips.md").unlink()
    doc = valid(json.loads(run("diff", str(sample), "--format", "json").stdout), "diff")
    assert doc["changed"] == [{"id": "gen-languages", "fields": ["Answer"], "renamed_from": None}]
    assert doc["removed"] == ["tip-think-aloud"] and doc["orphans"] == ["tip-think-aloud"]
    assert doc["summary"] == {
        "added": 0,
        "changed": 1,
        "removed": 1,
        "renamed": 0,
        "unchanged": 8,
        "orphans": 1,
        "notes": 9,
        "cards": 11,
    }


def test_stats_json_counts_cards_and_keeps_cloze_out_of_kinds(sample: Path) -> None:
    doc = valid(json.loads(run("stats", str(sample), "--format", "json", "--top", "2").stdout), "stats")
    assert {k["name"] for k in doc["kinds"]} == {"question", "tip", "faq"}
    assert {n["name"]: (n["notes"], n["cards"]) for n in doc["notetypes"]} == {
        "deckgen Basic": (9, 10),
        "deckgen Cloze": (1, 2),
    }
    assert len(doc["tags"]) == 2 and doc["summary"] == {"notes": 10, "cards": 12, "subdecks": 5, "tags_shown": 2}


def test_build_names_the_changed_notes_first_few_then_a_count(sample: Path) -> None:
    first = run("build", str(sample))
    assert re.search(r"since the lock: 10 added \([a-z-]+, [a-z-]+, [a-z-]+ and 7 more\), 0 changed", first.output)
    general = sample / "general.md"
    general.write_text(general.read_text(encoding="utf-8").replace("Python for modelling", "Python"), "utf-8")
    again = run("build", str(sample))
    assert "since the lock: 0 added, 1 changed (gen-languages), 0 removed, 9 unchanged" in again.output


def test_strict_build_says_warnings_were_treated_as_errors(sample: Path) -> None:
    (sample / "statement.md").write_text("## A statement\n<!-- id: st -->\n\nText.\n", encoding="utf-8")
    result = run("build", str(sample), "--strict")
    assert result.exit_code == 1
    assert "warning: question prompt does not end with '?' [prompt-not-question]" in result.output
    assert "\n1 warning treated as errors (--strict); nothing written" in result.output
    (sample / "broken.md").write_text("## No id?\n\nText\n", encoding="utf-8")
    both = run("build", str(sample), "--strict")
    assert "1 error, 1 warning treated as errors (--strict); nothing written" in both.output


@pytest.mark.parametrize(
    ("config", "where", "rule"),
    [
        ('name = "D"\n\noutptu = "x.apkg"\n', "3:1", "config-unknown-key"),
        ('name = "D"\noutput = "x.zip"\n', "2:1", "config-invalid"),
        ('name = "D"\n[lint]\nmax_answer_words = -1\n', "3:1", "config-invalid"),
        ('name = "D"\n[lint]\n  max_list_itms = 3\n', "3:3", "config-unknown-key"),
        ('name = "D"\nuuid = "not-a-uuid"\n', "2:1", "config-invalid"),
        ('name = "D"\nfoo = = 3\n', "2:7", "config-invalid"),
        ('name = ""\n', "1:1", "config-invalid"),
        (
            'name = "D"\n\n[lint]\ndisable = [\n  "list-too-long",\n  "prompt-not-a-question",\n]\n',
            "6:3",
            "config-invalid",
        ),
    ],
)
# at the key (or the rule inside a list); TOML syntax errors where the parser stopped
def test_config_errors_carry_their_real_line_and_column(tmp_path: Path, config: str, where: str, rule: str) -> None:
    (tmp_path / "deckgen.toml").write_text(config, encoding="utf-8")
    result = run("check", str(tmp_path))
    assert result.exit_code == 1
    assert f"deckgen.toml:{where}: error:" in result.output and f"[{rule}]" in result.output, result.output


def test_readme_documents_every_command_and_the_json_summary() -> None:
    readme = README.read_text(encoding="utf-8")
    for usage in (
        "deckgen init [DIR]",
        "deckgen fix --add-ids [SOURCE] [--dry-run]",
        "deckgen build [SOURCE]",
        "--watch",
        'deckgen new "Prompt?" [SOURCE]',
        "deckgen stats [SOURCE] [--format text|json] [--top N]",
        "deckgen diff  [SOURCE] [--format text|json]",
        "output.schema.json",
        "apt-get install chromium",
    ):
        assert usage in readme, usage


def test_json_output_of_a_real_process(sample: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    copy = tmp_path / "copy"
    shutil.copytree(sample, copy)
    done = subprocess.run(
        [sys.executable, "-m", "deckgen", "stats", str(copy), "--format", "json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0 and valid(json.loads(done.stdout), "stats")["summary"]["notes"] == 10
