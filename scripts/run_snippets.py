"""Run every ```python snippet of the deck's sources and report pass, fail or skipped.

Each snippet runs in its own subprocess with a timeout. A snippet that needs a library that is not
installed here (e.g. torch) is reported as skipped, and one that reads names it never defines (a
fragment of a longer program) as a fragment — never as passed. Exit status 1 if any snippet fails.

    python scripts/run_snippets.py [SOURCE] [--timeout SECONDS] [--only-light]
"""

from __future__ import annotations

import argparse
import ast
import builtins
import importlib.util
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

# Libraries cheap enough to run in the test suite.
LIGHT = frozenset({"numpy", "scipy", "pandas", "sklearn", "statsmodels"})
# Conventional names a fragment may use without importing them, and the library each needs.
IMPLIED = {"torch": "torch", "nn": "torch", "F": "torch", "np": "numpy", "pd": "pandas", "tf": "tensorflow"}


@dataclass(frozen=True)
class Snippet:
    path: Path
    line: int  # line of the opening fence
    code: str

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"

    def free_names(self) -> set[str]:
        """Names the snippet reads but never defines: a fragment that needs context from elsewhere."""
        try:
            tree = ast.parse(self.code)
        except SyntaxError:
            return set()
        loaded, defined = set(), set(dir(builtins))
        for node in ast.walk(tree):
            if isinstance(node, ast.Name):
                (loaded if isinstance(node.ctx, ast.Load) else defined).add(node.id)
            elif isinstance(node, ast.arg):
                defined.add(node.arg)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                defined.add(node.name)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                defined |= {(a.asname or a.name).split(".")[0] for a in node.names}
        return loaded - defined

    def imports(self) -> set[str]:
        """Top-level modules the snippet imports (empty if it does not parse: it will fail when run)."""
        try:
            tree = ast.parse(self.code)
        except SyntaxError:
            return set()
        found = {IMPLIED[name] for name in self.free_names() if name in IMPLIED}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
        return found


@dataclass(frozen=True)
class Outcome:
    snippet: Snippet
    status: str  # "pass" | "fail" | "skipped" (library not installed) | "fragment" (needs context)
    detail: str = ""


def snippets(source: Path) -> list[Snippet]:
    """Every fenced block whose info string is ``python``, in file and line order."""
    found = []
    for path in sorted(source.rglob("*.md")):
        lines = path.read_text(encoding="utf-8").split("\n")
        i = 0
        while i < len(lines):
            stripped = lines[i].lstrip()
            fence = stripped[:3]
            if fence in ("```", "~~~"):
                marker = stripped[: len(stripped) - len(stripped.lstrip(fence[0]))]
                info = stripped[len(marker) :].strip().split()
                end = next((j for j in range(i + 1, len(lines)) if lines[j].strip().startswith(marker)), len(lines))
                if info and info[0] == "python":
                    found.append(Snippet(path, i + 1, "\n".join(lines[i + 1 : end]) + "\n"))
                i = end + 1
            else:
                i += 1
    return found


def missing_modules(snippet: Snippet) -> list[str]:
    return sorted(m for m in snippet.imports() if importlib.util.find_spec(m) is None)


def run(snippet: Snippet, timeout: float) -> Outcome:
    context = sorted(snippet.free_names() - IMPLIED.keys())
    if context:  # checked first, so a snippet needing a missing library is still checked for this
        return Outcome(snippet, "fragment", "not self-contained: uses " + ", ".join(context))
    missing = missing_modules(snippet)
    if missing:
        return Outcome(snippet, "skipped", "needs " + ", ".join(missing))
    with tempfile.TemporaryDirectory() as tmp:
        try:
            done = subprocess.run(
                [sys.executable, "-c", snippet.code],
                cwd=tmp,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return Outcome(snippet, "fail", f"timed out after {timeout:g} s")
    if done.returncode != 0:
        return Outcome(snippet, "fail", (done.stderr.strip().splitlines() or ["exit " + str(done.returncode)])[-1])
    return Outcome(snippet, "pass", done.stdout.strip().replace("\n", " | ")[:200])


def is_light(snippet: Snippet) -> bool:
    return snippet.imports() <= LIGHT | set(sys.stdlib_module_names)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", nargs="?", default=Path(__file__).parent.parent / "source", type=Path)
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--only-light", action="store_true", help="skip snippets needing heavier libraries")
    args = parser.parse_args(argv)
    outcomes = []
    for snippet in snippets(args.source):
        if args.only_light and not is_light(snippet):
            outcomes.append(Outcome(snippet, "skipped", "not light: " + ", ".join(sorted(snippet.imports() - LIGHT))))
        else:
            outcomes.append(run(snippet, args.timeout))
    for o in outcomes:
        print(f"{o.status:7} {o.snippet.where}  {o.detail}")
    counts = {s: sum(o.status == s for o in outcomes) for s in ("pass", "fail", "skipped", "fragment")}
    print(
        f"{len(outcomes)} snippets: {counts['pass']} passed, {counts['fail']} failed, "
        f"{counts['skipped']} skipped, {counts['fragment']} fragments"
    )
    return 1 if counts["fail"] else 0


if __name__ == "__main__":
    sys.exit(main())
