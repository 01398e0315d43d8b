"""Every plan the README and the --help texts tell a user to run ships with the harness and loads."""

from __future__ import annotations

import argparse
import re

import pytest

from harness.cli import build_parser
from harness.plan.models import load_plan
from tests.helpers import REPO

PLAN_PATH = re.compile(r"\bplans/[\w.-]+\.ya?ml\b")


def _all_help(parser: argparse.ArgumentParser) -> str:
    """The parser's --help text and every subcommand's, nested (lab, sim, zoo and corpus have their own)."""
    texts = [parser.format_help()]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            texts += [_all_help(sub) for sub in action.choices.values()]
    return "\n".join(texts)


NAMED = sorted(set(PLAN_PATH.findall((REPO / "README.md").read_text()))
               | set(PLAN_PATH.findall(_all_help(build_parser()))))


def test_the_docs_name_plans_at_all():
    # The pattern still finds the plans the docs teach (so an empty list cannot pass the test below).
    assert {"plans/host-demo.yaml", "plans/lab.yaml"} <= set(NAMED)


@pytest.mark.parametrize("named", NAMED)
def test_every_plan_named_in_readme_and_help_ships_and_loads(named):
    """Fails when a doc names a plan that is not in plans/ (plans/lab.yaml was named by the README's nightly
    and calibrate examples and three --help epilogs, and did not ship)."""
    path = REPO / named
    assert path.is_file(), f"{named} is named in README.md or a --help text but does not ship"
    plan, _, _ = load_plan(path)
    assert plan.artifacts or plan.accuracy
