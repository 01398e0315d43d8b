"""The user docs: README.md and the docs site under docs/ (mkdocs.yml).

Every plan the README, the docs and the --help texts tell a user to run ships with the harness and loads; every
inventory example in the docs loads; the site builds with --strict (no broken link, no page left out of the nav);
and no page talks about the harness's own history (sessions, issues, commits) instead of its use.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli import build_parser
from harness.inventory import load_inventory
from harness.plan.models import load_plan
from tests.helpers import REPO, write

DOC_FILES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]

PLAN_PATH = re.compile(r"\bplans/[\w.-]+\.ya?ml\b")


def _all_help(parser: argparse.ArgumentParser) -> str:
    """The parser's --help text and every subcommand's, nested (lab, sim, zoo and corpus have their own)."""
    texts = [parser.format_help()]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            texts += [_all_help(sub) for sub in action.choices.values()]
    return "\n".join(texts)


NAMED = sorted({name for doc in DOC_FILES for name in PLAN_PATH.findall(doc.read_text())}
               | set(PLAN_PATH.findall(_all_help(build_parser()))))


def test_the_docs_name_plans_at_all():
    # The pattern still finds the plans the docs teach (so an empty list cannot pass the test below).
    assert {"plans/host-demo.yaml", "plans/lab.yaml"} <= set(NAMED)


@pytest.mark.parametrize("named", NAMED)
def test_every_plan_named_in_readme_and_help_ships_and_loads(named):
    """Fails when a doc names a plan that is not in plans/ (plans/lab.yaml was named by the README's nightly
    and calibrate examples and three --help epilogs, and did not ship)."""
    path = REPO / named
    assert path.is_file(), f"{named} is named in README.md, docs/ or a --help text but does not ship"
    plan, _, _ = load_plan(path)
    assert plan.artifacts or plan.accuracy


# --- README.md: a page for users -------------------------------------------------------------------------------

def test_the_readme_starts_with_the_two_commands_and_stays_short():
    """Fails when the README grows back into a notebook (it was 1,058 lines) or loses the two commands it opens
    with, which .ci/run (make test) and a new user (make demo) rely on."""
    lines = (REPO / "README.md").read_text().splitlines()
    assert len(lines) <= 150, f"README.md has {len(lines)} lines; move the detail into docs/"
    block = lines[lines.index("```sh") + 1:lines.index("```")]
    assert [line.split("#")[0].strip() for line in block] == ["make demo", "make test"]
    targets = set(re.findall(r"^([\w-]+):", (REPO / "Makefile").read_text(), re.M))
    assert {"demo", "test", "docs"} <= targets


# --- the docs site ---------------------------------------------------------------------------------------------

def _mkdocs_build(config_dir, site_dir):
    # No -q: it hides the warnings, and --strict fails only on warnings it logged.
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f",
                           str(config_dir / "mkdocs.yml"), "-d", str(site_dir)],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})


@pytest.mark.slow  # a strict mkdocs build
def test_the_docs_site_builds_strictly(tmp_path):
    """Fails on a broken link or anchor, a page missing from the nav, or a nav entry naming no page (mkdocs.yml
    turns each into a warning, and --strict fails on any warning)."""
    proc = _mkdocs_build(REPO, tmp_path / "site")
    assert proc.returncode == 0, proc.stderr
    pages = sorted(p.relative_to(REPO / "docs") for p in (REPO / "docs").rglob("*.md"))
    for page in pages:
        built = tmp_path / "site" / ("index.html" if page.stem == "index" else f"{page.parent / page.stem}/index.html")
        assert built.is_file(), f"docs/{page} was not built"


@pytest.mark.slow  # a strict mkdocs build
@pytest.mark.parametrize("breakage", ["a link to a missing page", "a link to a missing anchor",
                                      "a page left out of the nav"])
def test_the_strict_build_rejects_a_broken_site(tmp_path, breakage):
    """The build test above could pass on a configuration that lets these through (mkdocs only logs missing
    anchors and pages outside the nav at INFO unless told otherwise): each breakage must fail the build."""
    shutil.copy(REPO / "mkdocs.yml", tmp_path / "mkdocs.yml")
    shutil.copytree(REPO / "docs", tmp_path / "docs")
    shutil.copytree(REPO / "scripts", tmp_path / "scripts")  # the hooks: without them every build fails
    assert _mkdocs_build(tmp_path, tmp_path / "unbroken").returncode == 0, "the copy does not build unbroken"
    if breakage == "a page left out of the nav":
        (tmp_path / "docs" / "orphan.md").write_text("# An orphan\n")
    else:
        target = "no-such-page.md" if breakage == "a link to a missing page" else "statistics.md#no-such-heading"
        with (tmp_path / "docs" / "index.md").open("a") as index:
            index.write(f"\nSee [this]({target}).\n")
    proc = _mkdocs_build(tmp_path, tmp_path / "site")
    assert proc.returncode != 0, f"{breakage} passed the strict build"


def test_troubleshooting_lists_every_message_with_its_fix_from_the_code(tmp_path):
    """The page's list is read from the code: a UserError added anywhere under harness/ appears with its fix
    and where it is raised, what it fills in at run time as …; one with no words of its own is left out.
    Catches a hand-kept list (it drifts with every new message) and a generator that drops the fix or the line."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("docs_fixes", REPO / "scripts" / "docs_fixes.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    (tmp_path / "plan").mkdir()
    (tmp_path / "plan" / "checks.py").write_text(
        "from harness.errors import UserError\n\n\n"
        "def check(path, n):\n"
        "    if n < 0:\n"
        "        raise UserError(f\"iterations is {n}; it counts runs.\", path=path, fix=\"give a whole \" + "
        "\"number of 1 or more.\")\n"
        "    raise UserError(f\"{n}: {path}\", fix=f\"{n}\")\n")
    (found,) = module.fixes(tmp_path)
    assert (found.area, found.where, found.message, found.fix) == (
        "plan", "harness/plan/checks.py:6", "iterations is …; it counts runs.", "give a whole number of 1 or more.")
    page = module.reference()
    assert "### Plan files" in page and "(given by --db); a command that only reads creates none." in page
    assert "harness/commands/common.py:" in page


# --- what the pages may say -------------------------------------------------------------------------------------

HISTORY_TALK = re.compile(
    r"\bsession \d|\bissue \d|(?<![\w&])#\d\d"  # work sessions, issues by number, #12 references
    r"|\bcommit\W{1,3}(?=[0-9a-f]*[a-f])[0-9a-f]{7,40}\b"  # "commit 5ef9e3c" ...
    r"|\b(?=[0-9a-f]*[a-f])[0-9a-f]{7,40}\b\W{1,3}commit"  # ... "5ef9e3c commit"
    r"|\b(?:at|git)\W{1,3}(?=[0-9a-f]*[a-f])[0-9a-f]{7,40}\b",  # "at `410cd9b`", "git `5ef9e3c`"
    re.IGNORECASE)


@pytest.mark.parametrize("text", ["Session 7's run", "see issue 12", "fixed in #42", "commit 5ef9e3c",
                                  "5ef9e3c0d1 commit", "at `410cd9b`", "(git `5ef9e3c`, one process)"])
def test_the_history_pattern_finds_history_talk(text):
    # The README held each of these forms; a pattern that missed them would let the test below pass on it.
    assert HISTORY_TALK.search(text)


@pytest.mark.parametrize("text", ["each finished run of a cell is committed at once", "run 20261201-105104-91fa",
                                  "a process session of its own", "sha256 where a runner reports it"])
def test_the_history_pattern_leaves_ordinary_words_alone(text):
    assert not HISTORY_TALK.search(text)


@pytest.mark.parametrize("doc", DOC_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_no_page_talks_about_sessions_issues_or_commits(doc):
    """Fails on the README as it was ("2026-11-23, session 7", "Session 4's rows found", "git `5ef9e3c`"):
    the pages speak to users; history belongs in CHANGELOG.md."""
    found = [(n, m.group(0)) for n, line in enumerate(doc.read_text().splitlines(), 1)
             for m in HISTORY_TALK.finditer(line)]
    assert not found, f"{doc.relative_to(REPO)}: {found}"


# --- examples in the docs ---------------------------------------------------------------------------------------

YAML_BLOCK = re.compile(r"^```yaml\n(.*?)^```", re.S | re.M)
INVENTORY_EXAMPLES = [(doc, block) for doc in DOC_FILES for block in YAML_BLOCK.findall(doc.read_text())
                      if block.startswith("devices:")]


def test_the_docs_hold_inventory_examples():
    # So an empty list cannot pass the test below: the Android and iPhone pages each show an entry.
    assert {doc.name for doc, _ in INVENTORY_EXAMPLES} >= {"android.md", "ios.md"}


@pytest.mark.parametrize("doc,block", INVENTORY_EXAMPLES, ids=lambda v: getattr(v, "name", ""))
def test_every_inventory_example_in_the_docs_loads(tmp_path, doc, block, monkeypatch):
    """Fails when an example names a key the inventory models reject (a misspelt tool, a key that was renamed)."""
    import yaml

    from harness.devices.android import FOLDER_TOOLS

    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # the examples' tools live under ~: put them there
    for entry in yaml.safe_load(block)["devices"]:
        for key, tool in entry.get("tools", {}).items():
            local = Path(tool).expanduser()
            local.mkdir(parents=True) if key in FOLDER_TOOLS else write(local, "a stand-in\n")
    path = tmp_path / "devices.yaml"
    path.write_text(block)
    assert load_inventory(path).devices


# --- the key reference, generated from the models --------------------------------------------------------------

def _docs_reference():
    import importlib.util

    spec = importlib.util.spec_from_file_location("docs_reference", REPO / "scripts" / "docs_reference.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    return module


def test_the_key_reference_reads_keys_types_defaults_bounds_units_and_comments():
    """Fails when the generator drops what a user needs from a key: nested and listed keys, the type, the
    default, the range, the unit its name gives, or the comment the code gives it."""
    from pydantic import Field

    from harness.validation import Seconds
    from harness.yamlconf import StrictModel

    class Inner(StrictModel):
        wait_s: Seconds = 3.0  # how long to wait

    class Outer(StrictModel):
        # The budget, per utterance.
        limit_ms: float = Field(default=5.0, gt=0)
        items: list[Inner] = []
        mode: str

    rows = {key.path: key for key in _docs_reference().model_keys(Outer)}
    assert list(rows) == ["limit_ms", "items", "items[].wait_s", "mode"]
    assert (rows["limit_ms"].type, rows["limit_ms"].default, rows["limit_ms"].allowed, rows["limit_ms"].unit,
            rows["limit_ms"].note) == ("number", "`5.0`", "> 0", "ms", "The budget, per utterance.")
    assert (rows["items[].wait_s"].unit, rows["items[].wait_s"].note) == ("s", "how long to wait")
    assert rows["items[].wait_s"].allowed.startswith("≥ 0.01, ≤")  # a timeout's bounds, from its type
    assert rows["mode"].default == "required" and rows["items"].type == "list of mapping"


def test_the_key_reference_lists_every_key_the_plan_and_each_platform_take():
    """Fails when a key of the plan or of a platform's entry is missing from the generated reference (a
    hand-written list drifts as soon as a key is added, like tools.onnxruntime_libs)."""
    from harness.devices import PLATFORMS, config_model
    from harness.plan.models import Plan

    module = _docs_reference()
    plan, inventory = module.reference("plan"), module.reference("inventory")
    assert all(f"| `{key}` |" in plan for key in Plan.model_fields)
    for platform in PLATFORMS:
        assert all(f"| `{key}` |" in inventory for key in config_model(platform).model_fields), platform
    assert "| `tools.onnxruntime_libs` |" in inventory and "| `cooldown.max_temp_c` |" in plan


@pytest.mark.slow  # a strict mkdocs build
def test_the_key_reference_tables_have_no_empty_description():
    # Catches the tables going back to code comments only (before: 37 plan rows and more inventory rows with an
    # empty "what it is" cell: threads, timeout_s, cooldown.*, tools.*).
    module = _docs_reference()
    for kind in ("plan", "inventory"):
        empty = [line for line in module.reference(kind).splitlines() if line.rstrip().endswith("|  |")]
        assert empty == [], kind


@pytest.mark.slow  # a strict mkdocs build
def test_the_built_reference_page_holds_the_tables(tmp_path):
    # Fails when the hook is not wired into mkdocs.yml: the page would show its markers and no keys.
    proc = _mkdocs_build(REPO, tmp_path / "site")
    assert proc.returncode == 0, proc.stderr
    page = (tmp_path / "site" / "plans-inventory" / "index.html").read_text()
    assert "keys: plan" not in page and "<code>htp_performance_mode</code>" in page
    assert "<code>tools.whisper_runner</code>" in page


def test_a_message_that_points_to_the_docs_names_a_page_that_exists(tmp_path):
    """Fails when an error's fix sends the user to a page without what it promises (it said "see the example in
    the README", and the README no longer holds the plan and inventory keys)."""
    from harness.errors import UserError

    plan = tmp_path / "plan.yaml"
    plan.write_text("name: p\nartifacts: [m.onnx]\ncooldown: 5\n")
    with pytest.raises(UserError) as caught:
        load_plan(plan)
    named = re.findall(r"docs/[\w/-]+\.md", str(caught.value))
    assert named and all((REPO / page).is_file() for page in named), str(caught.value)
    assert all("<!-- keys:" in (REPO / page).read_text() for page in named)


def test_the_readme_links_to_every_docs_page_and_each_link_resolves():
    """mkdocs checks the links inside docs/ only: fails when the README links to a page that moved or was renamed,
    or leaves a page unreachable from it (the old README linked to none)."""
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", (REPO / "README.md").read_text())
    local = [link for link in links if "://" not in link]
    assert all((REPO / link).is_file() for link in local), [link for link in local if not (REPO / link).is_file()]
    pages = {f"docs/{p.relative_to(REPO / 'docs')}" for p in (REPO / "docs").rglob("*.md")} - {"docs/index.md"}
    assert pages <= set(local), sorted(pages - set(local))
