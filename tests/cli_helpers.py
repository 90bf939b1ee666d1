"""Helpers for tests that pin the command line's options."""

from __future__ import annotations

import argparse

from harness.cli import build_parser


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def command_options(*path: str) -> set[str]:
    """The option strings and positional names of `harness <path...>` (e.g. ("tracks", "show"))."""
    parser = build_parser()
    for name in path:
        parser = _subparsers(parser)[name]
    opts: set[str] = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction | argparse._HelpAction):
            continue
        opts.update(action.option_strings or [action.dest])
    return opts


def subcommands(*path: str) -> set[str]:
    parser = build_parser()
    for name in path:
        parser = _subparsers(parser)[name]
    return set(_subparsers(parser))
