"""The top-level `netpolcheck` command, run as a newcomer would: a real process, its real output."""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from netpolcheck.cli import SUBCOMMANDS, build_parser

REPO = Path(__file__).resolve().parents[1]
SEED_STATE = REPO / "tests" / "data" / "seed" / "1-deny-all.json"
COMMANDS = [[], ["expect"], ["hollow"], ["hollow", "up"], ["hollow", "down"], ["hollow", "status"]]


def run(*args: str, entry: str = "module") -> subprocess.CompletedProcess[str]:
    """`python -m netpolcheck ARGS`, or the installed `netpolcheck` script next to this interpreter."""
    if entry == "module":
        argv = [sys.executable, "-m", "netpolcheck", *args]
    else:
        argv = [str(Path(sys.executable).parent / "netpolcheck"), *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False, cwd=REPO)


def parser_for(path: list[str]) -> argparse.ArgumentParser:
    parser = build_parser(path)
    for word in path:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[word]
    return parser


def test_python_dash_m_runs_a_command() -> None:
    proc = run("expect", str(SEED_STATE), "--profile", "weave-2.8.1")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["profile"] == "weave-2.8.1"


@pytest.mark.parametrize("entry", ["module", "script"])
def test_version_comes_from_the_package_metadata(entry: str) -> None:
    proc = run("--version", entry=entry)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"netpolcheck {version('netpolcheck')}"


def test_top_level_help_says_what_each_command_is_for() -> None:
    proc = run("--help")
    assert proc.returncode == 0, proc.stderr
    text = " ".join(proc.stdout.split())
    assert "dispatcher" not in text and "see `netpolcheck expect --help`" not in text
    assert "Weave Net enforces NetworkPolicy" in text
    for name, (_module, purpose) in SUBCOMMANDS.items():
        assert f"{name} {purpose}" in text, name
    assert "expected reachability matrix" in text and "embedded cluster" in text
    for entry_point in ("python -m netpolcheck.probe", "python -m netpolcheck.npc", "tox -e"):
        assert entry_point in text


def assert_options_documented(parser: argparse.ArgumentParser, help_text: str) -> None:
    """Every option of `parser` has help, and its help entry in `help_text` shows its default
    (an empty default, such as no ports, is worded: the entry says what "default" means)."""
    text = " ".join(help_text.split())
    options = [a for a in parser._actions if a.option_strings and a.dest != "help"]
    starts = [text.index(f"{a.option_strings[-1]} ", text.index("options:")) for a in options]
    bounds = [*sorted(starts), len(text)]
    for action, start in zip(options, starts, strict=True):
        entry = text[start : bounds[bounds.index(start) + 1]]
        assert action.help and action.help.strip(), f"{action.option_strings} has no help"
        if action.default in ([], ""):
            assert "default" in entry, entry
        elif action.default not in (None, False, argparse.SUPPRESS):
            shown = f"{action.default:g}" if isinstance(action.default, float) else str(action.default)
            assert "default" in entry and shown in entry, entry


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "netpolcheck")
def test_every_option_has_help_and_shows_its_default(path: list[str]) -> None:
    proc = run(*path, "--help")
    assert proc.returncode == 0, proc.stderr
    assert_options_documented(parser_for(path), proc.stdout)


AGENT_COMMANDS = [
    ("netpolcheck.probe", [name])
    for name in ("probe", "serve", "journal", "ready", "hold", "hold-status", "hold-stop")
] + [("netpolcheck.npc", [])]


@pytest.mark.parametrize(
    "module, path", AGENT_COMMANDS, ids=lambda v: v if isinstance(v, str) else " ".join(v)
)
def test_every_agent_option_has_help_and_shows_its_default(module: str, path: list[str]) -> None:
    """The same for the probe agent's and the reference controller's own command lines."""
    proc = subprocess.run(
        [sys.executable, "-m", module, *path, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    parser = importlib.import_module(f"{module}.__main__").build_parser()
    for word in path:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[word]
    assert_options_documented(parser, proc.stdout)


def test_hollow_status_option_reaches_the_command(tmp_path: Path) -> None:
    proc = run("hollow", "status", "--state-dir", str(tmp_path))
    assert proc.returncode == 1
    assert proc.stdout.strip() == f"no hollow cluster recorded in {tmp_path}"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ([], "the following arguments are required: COMMAND"),
        (["bogus"], "invalid choice: 'bogus'"),
        (["--bogus"], "the following arguments are required: COMMAND"),
        (["hollow", "up", "--nodes", "many"], "hollow up: argument --nodes: invalid int value: 'many'"),
        (["expect", str(SEED_STATE), "--bogus"], "expect: unrecognized arguments: --bogus"),
    ],
)
def test_bad_usage_is_one_line_and_exit_2(args: list[str], says: str) -> None:
    proc = run(*args)
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("netpolcheck: error: "), proc.stderr
    assert says in lines[0]
