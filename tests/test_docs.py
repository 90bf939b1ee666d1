"""The documentation: README.md is a short front page, docs/ builds as a site, every quoted command exists.

Commands are read from fenced code blocks (one logical line per command, `\\` continuations joined, shell comments
dropped) and from inline code spans in prose. A command starts a span, a line or a segment after `&&`, `||` or `;`,
as `harness` or `<venv>/bin/harness`. Its words name a subcommand path until the first
word that starts with `-` or is not a subcommand at that level; every `--option` on the line must exist for that
path. Quoted `python examples/X.py`, `python benchmarks/X.py` and `python scripts/X` files must exist.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

from cli_helpers import command_options
from harness.cli import build_parser

REPO = Path(__file__).resolve().parents[1]
DEMO_COMMAND = "./scripts/setup.sh && .venv/bin/harness demo"
TEST_COMMAND = './scripts/setup.sh --dev && .venv/bin/python -m pytest -m "slow or not slow"'
README_MAX_LINES = 160

_FENCE = re.compile(r"^\s*(```+|~~~+)")
_INLINE_CODE = re.compile(r"(`+)(.+?)\1", re.DOTALL)
_SHELL_COMMENT = re.compile(r"(?:^|\s)#.*$")
_SEPARATOR = re.compile(r"\s*(?:&&|\|\||;|\s\|\s)\s*")
_ENV_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_SCRIPT_PATH = re.compile(r"(?:\bpython3?\s+|(?<![\w/])\./)((?:examples|benchmarks|scripts)/[\w./-]*[\w/])")
_ALWAYS_ALLOWED = {"--help"}


def doc_files() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]


def code_snippets(text: str) -> Iterator[tuple[int, str]]:
    """(1-based line, text) of every command-bearing piece of a Markdown file: fenced lines and inline spans."""
    lines = text.split("\n")
    fence: str | None = None
    pending: list[str] = []
    pending_line = 0
    paragraph: list[str] = []
    paragraph_line = 0

    def flush_paragraph() -> Iterator[tuple[int, str]]:
        block = "\n".join(paragraph)
        for match in _INLINE_CODE.finditer(block):
            yield paragraph_line + block.count("\n", 0, match.start()), " ".join(match.group(2).split())
        paragraph.clear()

    for number, line in enumerate(lines, start=1):
        marker = _FENCE.match(line)
        if fence is None and marker:
            yield from flush_paragraph()
            fence = marker.group(1)[0] * 3
            continue
        if fence is not None:
            if marker and marker.group(1).startswith(fence):
                fence = None
                continue
            code = _SHELL_COMMENT.sub("", line).rstrip()
            if not pending:
                pending_line = number
            if code.endswith("\\"):
                pending.append(code[:-1])
                continue
            pending.append(code)
            yield pending_line, " ".join(" ".join(pending).split())
            pending.clear()
            continue
        if not line.strip():
            yield from flush_paragraph()
            continue
        if not paragraph:
            paragraph_line = number
        paragraph.append(line)
    yield from flush_paragraph()


def _words(segment: str) -> list[str]:
    try:
        return shlex.split(segment)
    except ValueError:  # an unbalanced quote in a placeholder: plain words are good enough
        return segment.split()


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _takes_positionals(parser: argparse.ArgumentParser) -> bool:
    return any(
        not action.option_strings and not isinstance(action, argparse._SubParsersAction) for action in parser._actions
    )


@cache
def _parser() -> argparse.ArgumentParser:
    return build_parser()


@cache
def _options(path: tuple[str, ...]) -> frozenset[str]:
    return frozenset(command_options(*path)) | _ALWAYS_ALLOWED


def command_problems(snippet: str) -> list[str]:
    """Problems with the `harness` commands and quoted script paths in one snippet ([] when all exist)."""
    problems = []
    for match in _SCRIPT_PATH.finditer(snippet):
        if not (REPO / match.group(1)).exists():
            problems.append(f"no such file: {match.group(1)}")
    for segment in _SEPARATOR.split(snippet):
        words = _words(segment)
        while words and (words[0] == "$" or _ENV_ASSIGNMENT.match(words[0])):
            words.pop(0)
        if not words or not (words[0] == "harness" or words[0].endswith("bin/harness")):
            continue
        parser, path = _parser(), []
        for word in words[1:]:
            subs = _subparsers(parser)
            if word.lstrip("[").startswith("-") or not subs:
                break
            if word in subs:
                parser = subs[word]
                path.append(word)
                continue
            if not _takes_positionals(parser):
                where = " ".join(["harness", *path])
                problems.append(f"`{where}` has no subcommand {word!r} (known: {', '.join(sorted(subs))})")
                parser = None
            break
        if parser is None:
            continue
        allowed = _options(tuple(path))
        for word in words[1:]:
            option = word.strip("[](){},.;:").split("=", 1)[0]
            if option.startswith("--") and len(option) > 2 and option not in allowed:
                problems.append(f"`{' '.join(['harness', *path])}` has no option {option}")
    return problems


def test_readme_is_a_short_front_page():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    lines = readme.split("\n")
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; keep it a front page (docs/ for more)"
    first_section = next((i for i, line in enumerate(lines) if line.startswith("## ")), len(lines))
    opening = lines[:first_section]
    assert DEMO_COMMAND in opening, "README.md must open with the demo command, verbatim"
    assert TEST_COMMAND in opening, "README.md must open with the test command (CI runs it), verbatim"


def test_site_builds_strict(tmp_path):
    if importlib.util.find_spec("mkdocs") is None:
        pytest.skip("mkdocs is not installed (it is in the dev extras: pip install -e '.[dev]')")
    site = tmp_path / "site"
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(REPO / "mkdocs.yml")]
    result = subprocess.run(
        [*command, "--site-dir", str(site)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stdout}{result.stderr}"
    assert (site / "index.html").is_file()
    for page in ("participants", "organisers", "researchers", "results", "reference/cli"):
        assert (site / page / "index.html").is_file(), f"{page} missing from the site"


def test_every_quoted_command_exists():
    problems = []
    checked = 0
    for path in doc_files():
        for line, snippet in code_snippets(path.read_text(encoding="utf-8")):
            checked += 1
            problems += [f"{path.relative_to(REPO)}:{line}: {p}" for p in command_problems(snippet)]
    assert checked > 100, f"only {checked} code snippets found: is the extraction broken?"
    assert not problems, "commands quoted in the docs that the CLI does not have:\n" + "\n".join(problems)


@pytest.mark.parametrize(
    "snippet",
    [
        "harness submti --track nano subset.jsonl",
        "harness submit --track nano subset.jsonl --bogus 3",
        "harness leaderboard biuld --out site/",
        ".venv/bin/harness tracks show nano --yaml",
        "python examples/no_such_baseline.py --track nano --out x.jsonl",
        "cd run && harness select --scores s/ --track nano --out x.jsonl --rank-by x",
    ],
)
def test_a_wrong_command_is_found(snippet):
    assert command_problems(snippet), snippet


@pytest.mark.parametrize(
    "snippet",
    [
        "harness tracks show nano --json",
        "harness select --scores s/ --where 'a and b' --by x --top 0.1 --track nano --out x.jsonl",
        "harness scaling advise ... --budget 3.1e6 --law effective-data",
        "harness sweep run experiments/x.toml [--launcher slurm] && harness sweep report experiments/x.toml",
        "lm_eval --model harness --model_args checkpoint=x",
        "harness-lm-eval --model harness --model_args checkpoint=x --tasks hellaswag",
        "pip install harness",
        "python benchmarks/gpu_check.py",
    ],
)
def test_a_right_command_passes(snippet):
    assert command_problems(snippet) == []


def test_snippets_come_from_blocks_and_spans():
    text = (
        "Intro with `harness validate --track nano\nx.jsonl` over two lines.\n\n"
        "```bash\nharness select --scores s/ \\\n    --top 0.1  # a comment with --not-an-option\n```\n"
    )
    assert list(code_snippets(text)) == [
        (1, "harness validate --track nano x.jsonl"),
        (5, "harness select --scores s/ --top 0.1"),
    ]
