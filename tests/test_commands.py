"""The command line as a newcomer meets it: every option explained, the exit codes in --help, one module per
command, a project found from any of its folders, schemas for the YAML files, shell completion."""

from __future__ import annotations

import argparse
import pkgutil

import harness.commands
from harness.cli import COMMANDS, build_parser


def _actions(parser: argparse.ArgumentParser, name: str = "harness"):
    """(command, action) for every argument of the parser and of its subcommands, nested."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                yield from _actions(sub, f"{name} {sub_name}")
        else:
            yield name, action


def test_every_option_and_argument_has_help():
    # Catches an option added without help= (nightly --inventory, runs --limit, validate --builds, export --format
    # had none: `--help` listed them with nothing after).
    bare = [f"{name} {'/'.join(action.option_strings) or action.dest}" for name, action in _actions(build_parser())
            if not action.help]
    assert bare == []


def test_top_level_help_lists_the_exit_codes():
    # Catches the exit codes left to each command's page (130 for Ctrl-C was in no --help at all).
    text = build_parser().format_help()
    codes = text[text.index("exit status"):]
    listed = {line.split()[0]: line for line in codes.splitlines()[1:] if line[:3].strip().isdigit()}
    assert {"0", "1", "2", "130"} <= set(listed), codes
    assert "bad input" in listed["2"] and "Ctrl-C" in listed["130"] and "128 + the signal" in listed["130"], codes


def test_every_command_module_is_registered_once():
    # Catches a module added under harness/commands/ that `harness --help` never shows (or one listed twice).
    with_parser = {info.name for info in pkgutil.iter_modules(harness.commands.__path__)
                   if hasattr(__import__(f"harness.commands.{info.name}", fromlist=["_"]), "add_parser")}
    registered = [module.__name__.rsplit(".", 1)[1] for module in COMMANDS]
    assert sorted(registered) == sorted(with_parser)
