"""Lint rules and the bad-input corpus: every case reports its exact place and rule, never a traceback,
and the previous package in the output folder is left byte-identical."""

from __future__ import annotations

import json
import re
import shutil
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from deckgen.cli import main
from deckgen.sources.check import RULES, answer_words

BAD = Path(__file__).parent / "data" / "bad"
CASES: dict[str, dict[str, list[str]]] = tomllib.loads((BAD / "expected.toml").read_text(encoding="utf-8"))
README = Path(__file__).parent.parent / "README.md"


def _run(*args: str) -> Result:
    result = CliRunner().invoke(main, list(args))
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def _corpus_source(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A valid base source (built once, so a previous package exists) plus the files the cases point at."""
    src, out = tmp_path / "src", tmp_path / "out"
    shutil.copytree(BAD / "_base", src)
    (tmp_path / "outside.png").write_bytes((src / "images" / "ok.png").read_bytes())
    (src / "images" / "link.png").symlink_to(tmp_path / "outside.png")
    first = _run("build", str(src), "-o", str(out))
    assert first.exit_code == 0, first.output
    (apkg,) = out.glob("*.apkg")
    return src, out, apkg


def _leftovers(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir() if p.name.endswith(".tmp") or p.name.startswith(".corpus"))


def test_corpus_is_large_enough_and_covers_every_rule() -> None:
    assert len(CASES) >= 30
    covered = {f.split()[1] for case in CASES.values() for f in case["findings"]}
    untestable_here = {
        "source-missing",
        "config-missing",
        "config-invalid",
        "config-unknown-key",
        "unreadable",
        "uuid-missing",
        "lock-invalid",  # tests/test_lock.py
        "lock-foreign",  # tests/test_identity.py
    }
    untestable_here |= {"file-outside-source"}  # a symlink case: tests/test_robustness.py
    assert set(RULES) - covered - untestable_here == set()


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_reports_exact_place_and_keeps_previous_package(case: str, tmp_path: Path) -> None:
    src, out, apkg = _corpus_source(tmp_path)
    before = apkg.read_bytes()
    shutil.copyfile(BAD / f"{case}.md", src / "case.md")
    result = _run("build", str(src), "-o", str(out), "--strict")
    findings = CASES[case]["findings"]
    if not findings:
        assert result.exit_code == 0, result.output
        assert "Case" in result.output and "wrote" in result.output
        return
    assert result.exit_code == 1, result.output
    reported = re.findall(r"case\.md:(\d+):(\d+): (?:error|warning): .*\[([a-z0-9-]+)\]", result.output)
    assert sorted(f"{line}:{col} {rule}" for line, col, rule in reported) == sorted(findings)
    assert "nothing written" in result.output
    assert apkg.read_bytes() == before
    assert _leftovers(out) == []


def test_unreadable_category_file_is_reported_not_raised(tmp_path: Path) -> None:
    src, out, apkg = _corpus_source(tmp_path)
    before = apkg.read_bytes()
    (src / "folder.md").mkdir()  # a directory where a file should be: read fails
    result = _run("build", str(src), "-o", str(out))
    assert result.exit_code == 1
    assert re.search(r"folder\.md:1:1: error: cannot read file: .*\[unreadable\]", result.output)
    assert apkg.read_bytes() == before


def test_missing_config_and_missing_folder_are_reported(tmp_path: Path) -> None:
    result = _run("build", str(tmp_path / "nope"))
    assert result.exit_code == 1 and "[source-missing]" in result.output
    (tmp_path / "empty").mkdir()
    result = _run("build", str(tmp_path / "empty"))
    assert result.exit_code == 1 and "deckgen.toml:1:1: error: deckgen.toml not found [config-missing]" in result.output


def test_config_unknown_key_suggests_the_right_one(tmp_path: Path) -> None:
    src, _, _ = _corpus_source(tmp_path)
    (src / "deckgen.toml").write_text(
        'name = "Corpus"\nuuid = "6f1b7c1e-2a55-4f0e-9d43-0f7e4c2b9a11"\noutptu = "x.apkg"\n', encoding="utf-8"
    )
    result = _run("check", str(src))
    assert result.exit_code == 1
    assert "unknown key 'outptu' [config-unknown-key]" in result.output and "did you mean 'output'?" in result.output


def test_check_reports_all_findings_sorted_in_one_run(tmp_path: Path) -> None:
    src, _, _ = _corpus_source(tmp_path)
    for name in ("heading-without-id", "unsafe-script", "list-too-long"):
        shutil.copyfile(BAD / f"{name}.md", src / f"{name}.md")
    result = _run("check", str(src), "--format", "json")
    assert result.exit_code == 1
    found = json.loads(result.stdout)["diagnostics"]
    # the three files also all claim the subdeck "Case": reported too, in the same run
    assert {f["rule"] for f in found} == {"id-missing", "list-too-long", "unsafe-html", "deck-duplicate"}
    keys = [(f["path"], f["line"], f["col"]) for f in found]
    assert keys == sorted(keys)


def test_warnings_pass_check_but_fail_under_strict(tmp_path: Path) -> None:
    src, _, _ = _corpus_source(tmp_path)
    shutil.copyfile(BAD / "prompt-not-question.md", src / "case.md")
    assert _run("check", str(src)).exit_code == 0
    strict = _run("check", str(src), "--strict")
    assert (
        strict.exit_code == 1
        and "warning: question prompt does not end with '?' [prompt-not-question]" in strict.output
    )


def test_warning_can_be_silenced_per_note_and_per_deck(tmp_path: Path) -> None:
    src, _, _ = _corpus_source(tmp_path)
    text = (BAD / "prompt-not-question.md").read_text(encoding="utf-8")
    (src / "case.md").write_text(
        text.replace("-->\n", "-->\n<!-- ignore: prompt-not-question -->\n", 1), encoding="utf-8"
    )
    assert _run("check", str(src), "--strict").exit_code == 0
    shutil.copyfile(BAD / "list-too-long.md", src / "case.md")
    with (src / "deckgen.toml").open("a", encoding="utf-8") as fh:
        fh.write('\n[lint]\ndisable = ["list-too-long"]\n')
    assert _run("check", str(src), "--strict").exit_code == 0


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("One two three.", 3),
        ("Loss $a_i + b$ is convex.", 4),
        ("Code:\n\n```python\nx = 1 + 2 + 3\n```\n\nDone.", 2),
        ("Display\n\n$$\nx = y + z\n$$\n", 1),
        ("See [the docs](https://example.org/a/b) now.", 4),
    ],
)
def test_answer_words_skip_code_and_display_math(text: str, words: int) -> None:
    assert answer_words(text) == words


def test_readme_documents_every_rule_id() -> None:
    readme = README.read_text(encoding="utf-8")
    missing = [rule for rule in RULES if f"`{rule}`" not in readme]
    assert missing == []


def test_shipped_deck_is_clean_under_strict() -> None:
    result = _run("check", str(Path(__file__).parent.parent / "source"), "--strict")
    assert result.exit_code == 0, result.output
    assert "0 error(s), 0 warning(s)" in result.output


# --- prompt-duplicate: near-linear search, same verdicts as comparing every pair -------------------


def _pairwise_reference(prompts: list[str]) -> list[tuple[int, int]]:
    """The rule's definition, checked against every earlier prompt (quadratic; small inputs only)."""
    from deckgen.sources.duplicates import normal_prompt, related

    keys = [normal_prompt(p) for p in prompts]
    found = []
    for i, key in enumerate(keys):
        first = next((j for j in range(i) if related(keys[j], key)), None)
        if first is not None:
            found.append((i, first))
    return found


@pytest.mark.parametrize(
    ("earlier", "later"),
    [
        ("What does the ROC curve plot?", "what does the ROC curve plot"),  # case and punctuation
        ("What does the ROC curve plot?", "What does the ROC curve plots?"),  # typo in one word
        ("How does gradient descent pick the step size?", "How does gradient descent pick a step size?"),
        ("How does gradient descent pick the step size?", "How does gradient descent pick the step-size?"),
        ("Why does batch normalisation speed up training?", "Why does batch normalization speed up training?"),
        ("Why does dropout reduce overfitting in deep networks?", "Why does dropout reduce overfitting in networks?"),
        ("What is a convolution?", "What is a convolutoin?"),
    ],
)
def test_near_identical_prompts_are_reported_against_the_earlier_note(earlier: str, later: str) -> None:
    from deckgen.sources.duplicates import duplicate_pairs

    prompts = ["How is recall defined?", earlier, "What is an epoch?", later]
    assert duplicate_pairs(prompts) == [(3, 1)] == _pairwise_reference(prompts)


def test_distinct_prompts_sharing_a_template_are_not_duplicates() -> None:
    from deckgen.sources.duplicates import duplicate_pairs

    prompts = [f"What is {term}?" for term in ("precision", "recall", "entropy", "a kernel", "an epoch", "bagging")]
    assert duplicate_pairs(prompts) == [] == _pairwise_reference(prompts)


def test_duplicate_search_finds_every_one_word_edit_and_reports_only_true_pairs() -> None:
    import random

    from deckgen.sources.duplicates import duplicate_pairs, normal_prompt, related

    rng = random.Random(7)
    letters = "abcdefghijklmnopqrstuvwxyz"
    for _ in range(40):
        # distinct base prompts, some repeated once with one word edited: the pairwise search flags exactly these
        base = [" ".join("".join(rng.choices(letters, k=6)) for _ in range(rng.randint(3, 9))) for _ in range(30)]
        prompts = [p + "?" for p in base]
        for original in rng.sample(base, 15):
            words = original.split()
            i = rng.randrange(len(words))
            edit = rng.randrange(4)
            if edit == 0:
                words[i] = words[i][:3] + words[i][4:]  # typo: a letter dropped
            elif edit == 1:
                words.insert(i, rng.choice(["a", "the", "of"]))
            elif edit == 2 and len(words) > 5:
                words[i] = "an"  # a word replaced by a short one
            else:
                words[i] = words[i].upper() + ","
            prompts.append(" ".join(words) + "?")
        rng.shuffle(prompts)
        found = duplicate_pairs(prompts)
        assert found == _pairwise_reference(prompts)
        keys = [normal_prompt(p) for p in prompts]
        assert all(j < i and related(keys[j], keys[i]) for i, j in found)


def test_code_blocks_follow_the_parsers_fence_rules() -> None:
    from deckgen.sources.check import _code_blocks

    text = "Intro\n\n````markdown\n```python\nx = 1\n```\n````\n\n```\ny\n```"
    assert list(_code_blocks(text)) == [(7, 3), (text.index("```\ny"), 1)]


# --- card-design rules: one idea per card ------------------------------------------------------

GOOD = Path(__file__).parent / "data" / "good"


@pytest.mark.parametrize("name", sorted(p.name for p in GOOD.glob("*.md")))
def test_good_corpus_builds_cleanly_under_strict(name: str, tmp_path: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(BAD / "_base", src)
    shutil.copyfile(GOOD / name, src / name)
    result = _run("build", str(src), "-o", str(tmp_path / "out"), "--strict")
    assert result.exit_code == 0, result.output
    assert "0 warning" in _run("check", str(src), "--strict").output


def test_cloze_limit_is_configurable(tmp_path: Path) -> None:
    src, _, _ = _corpus_source(tmp_path)
    shutil.copyfile(BAD / "cloze-too-many.md", src / "case.md")
    assert _run("check", str(src), "--strict").exit_code == 1
    with (src / "deckgen.toml").open("a", encoding="utf-8") as fh:
        fh.write("\n[lint]\nmax_cloze_deletions = 6\n")
    assert _run("check", str(src), "--strict").exit_code == 0


@pytest.mark.parametrize(
    ("prompt", "fires"),
    [
        ("When do Bernoulli counts arise, and what are their mean and variance?", True),
        ("What is the KL divergence, and what are its key properties?", True),
        ("What do oversampling and undersampling do, and what does each cost you?", True),
        ("What is mixed-precision training, and why does FP16 need loss scaling?", True),
        ("What is a p-value? What is it not?", True),
        ("What is k-means++ initialisation, and why use it?", False),
        ("How do you evaluate a PyTorch model correctly, and why?", False),
        ("Which models need feature scaling, and which do not?", False),
        ("What is a p-value, and what is it not?", False),
        ("How do precision and recall change as the threshold rises?", False),
        ("What does `f(x)?` return, and why does it matter?", False),
        ("What is $P(A \\mid B)$, and how does it relate to $P(B \\mid A)$?", False),
    ],
)
def test_prompt_two_questions_fires_only_on_separate_asks(prompt: str, fires: bool) -> None:
    from deckgen.sources.check import _second_ask

    assert (_second_ask(prompt) is not None) == fires


@pytest.mark.parametrize(
    "text",
    [
        "(" * 100_000,  # unclosed brackets (100 KB, as the bound asks)
        "a, " * 33_000,  # one endless run
        "$" + "x, " * 33_000,  # unclosed math
        "\\(" * 50_000,
        "{{c1::" * 16_000,
    ],
)
def test_design_rules_stay_linear_on_adversarial_answers(text: str) -> None:
    import time

    from deckgen.sources.check import _second_ask, enumerations, key_term

    started = time.perf_counter()
    list(enumerations(text, 5))
    _second_ask(text[:50_000] + "?")
    key_term("What is " + text[:50_000])
    assert time.perf_counter() - started < 3.0
