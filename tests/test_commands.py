"""The command line as a newcomer meets it: every option explained, the exit codes in --help, one module per
command, a project found from any of its folders, schemas for the YAML files, shell completion."""

from __future__ import annotations

import argparse
import json
import pkgutil
import re
from pathlib import Path

import pytest

import harness.commands
from harness.cli import COMMANDS, build_parser, main
from harness.errors import EXIT_USER_ERROR, UserError
from harness.project import DB_ENV, DEFAULT_DB, DEFAULT_INVENTORY, INVENTORY_ENV, find_project
from harness.project_file import load_project_file
from tests.helpers import REPO, write


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


# --- a project folder that finds itself ---------------------------------------------------------------------


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A project folder (harness.toml) holding a database of two runs and a one-host inventory; no HARNESS_*
    variable set.  Returns (root, run ids)."""
    from harness.nightly.synthetic import write_synthetic_history

    for name in (DB_ENV, INVENTORY_ENV):
        monkeypatch.delenv(name, raising=False)
    root = tmp_path / "lab"
    write(root / "harness.toml", 'db = "results/h.db"\n')
    write(root / "devices.yaml", "devices:\n  - {id: host, platform: host}\n")
    run_ids = write_synthetic_history(root / "results" / "h.db", nights=2, devices=1, builds=1, samples=6, runs=2)
    return root, run_ids


def _in(folder: Path, monkeypatch, *argv: str) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    monkeypatch.chdir(folder)
    return main(list(argv))


def test_runs_from_a_subfolder_finds_the_projects_database(project, monkeypatch, capsys):
    # Catches --db read relative to the current folder (it found no database two folders down).
    root, run_ids = project
    assert _in(root / "plans" / "deeper", monkeypatch, "runs") == 0
    out = capsys.readouterr().out
    assert all(run_id in out for run_id in run_ids), out


def test_a_devices_yaml_beside_reports_marks_a_project_too(project, monkeypatch, capsys):
    # Catches the search knowing harness.toml alone (a lab folder made before harness.toml existed).
    root, _ = project
    (root / "harness.toml").unlink()
    (root / "reports").mkdir()
    assert _in(root / "plans", monkeypatch, "devices", "--json") == 0
    assert json.loads(capsys.readouterr().out)[0]["id"] == "host"


def test_from_an_unrelated_folder_a_reading_command_says_where_it_looked_and_creates_nothing(tmp_path, monkeypatch,
                                                                                              capsys):
    # Catches a reading command that creates reports/harness.db where it is run, or whose message does not
    # say that no project was found (and so how to point at one).
    for name in (DB_ENV, INVENTORY_ENV):
        monkeypatch.delenv(name, raising=False)
    away = tmp_path / "elsewhere"
    for argv in (["runs"], ["report", "latest"], ["export", "latest"], ["site", "-o", "s"], ["compare", "a", "b"]):
        assert _in(away, monkeypatch, *argv) == EXIT_USER_ERROR, argv
        err = capsys.readouterr().err
        assert f"no harness project in {away}" in err and DB_ENV in err and "harness run PLAN" in err, err
        assert list(away.iterdir()) == [], argv


def test_devices_from_an_unrelated_folder_says_where_it_looked_for_the_inventory(tmp_path, monkeypatch, capsys):
    # Catches the bare "devices.yaml: file not found. Fix: check the path." that did not say why it looked there.
    for name in (DB_ENV, INVENTORY_ENV):
        monkeypatch.delenv(name, raising=False)
    away = tmp_path / "elsewhere"
    assert _in(away, monkeypatch, "devices") == EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert f"no inventory at devices.yaml: no harness project in {away}" in err and INVENTORY_ENV in err, err


def test_harness_db_overrides_the_project_and_db_overrides_both(project, tmp_path, monkeypatch, capsys):
    # Catches HARNESS_DB ignored (the project's database listed), or winning over an explicit --db.
    root, run_ids = project
    other = tmp_path / "other.db"
    from harness.nightly.synthetic import write_synthetic_history

    other_ids = write_synthetic_history(other, nights=1, devices=1, builds=1, samples=6, runs=2, seed=7,
                                        plan_name="other-plan")
    monkeypatch.setenv(DB_ENV, str(other))
    assert _in(root, monkeypatch, "runs", "--json") == 0
    assert [r["run_id"] for r in json.loads(capsys.readouterr().out)] == other_ids
    assert _in(root, monkeypatch, "runs", "--json", "--db", str(root / "results" / "h.db")) == 0
    assert {r["run_id"] for r in json.loads(capsys.readouterr().out)} == set(run_ids)
    monkeypatch.setenv(DB_ENV, str(tmp_path / "missing.db"))
    assert _in(root, monkeypatch, "runs") == EXIT_USER_ERROR
    assert f"no database at {tmp_path / 'missing.db'} (named by {DB_ENV})" in capsys.readouterr().err


def test_harness_inventory_overrides_the_projects(project, tmp_path, monkeypatch, capsys):
    # Catches HARNESS_INVENTORY ignored (the project's one-host inventory listed).
    root, _ = project
    inventory = write(tmp_path / "mine.yaml", "devices:\n  - {id: bench, platform: host}\n")
    monkeypatch.setenv(INVENTORY_ENV, str(inventory))
    assert _in(root / "plans", monkeypatch, "devices", "--json") == 0
    assert [d["id"] for d in json.loads(capsys.readouterr().out)] == ["bench"]


def test_report_without_o_writes_into_the_projects_reports_folder(project, monkeypatch, capsys):
    # Catches the report written relative to the current folder (a subfolder) instead of beside the database.
    root, run_ids = project
    assert _in(root / "plans", monkeypatch, "report", "latest") == 0
    assert (root / "results" / run_ids[-1] / "index.html").is_file()
    assert not (root / "plans" / "reports").exists()


def test_an_unknown_key_in_harness_toml_is_named_with_its_line(project, monkeypatch, capsys):
    # Catches a misspelt key silently ignored (the database looked for in the default place).
    root, _ = project
    write(root / "harness.toml", 'db = "results/h.db"\n\ndatabse = "x.db"\n')
    assert _in(root, monkeypatch, "runs") == EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert f"{root / 'harness.toml'}:3: databse: unknown key" in err and "db, inventory" in err, err


def test_the_shipped_harness_toml_loads_and_marks_the_repository():
    # Catches the shipped project file drifting from the keys the loader takes.
    assert find_project(REPO / "docs") == REPO
    shipped = load_project_file(REPO / "harness.toml")
    assert (shipped.db, shipped.inventory) == (DEFAULT_DB, DEFAULT_INVENTORY)  # it documents the defaults


# --- a bad file: every problem at once ----------------------------------------------------------------------


def test_a_plan_with_many_problems_lists_each_with_its_line_up_to_ten(tmp_path):
    # Catches the one-problem message ("(and 11 more problems in this file)"): the user fixed one key per try.
    from harness.plan.models import load_plan

    wrong = "".join(f"colour{i}: red\n" for i in range(12))  # lines 3-14: twelve unknown keys
    plan = write(tmp_path / "plan.yaml", f"name: x\nartifacts: [a.onnx]\n{wrong}")
    with pytest.raises(UserError) as raised:
        load_plan(plan)
    lines = str(raised.value).splitlines()
    assert len(lines) == 11 and lines[-1].strip() == "and 2 more problems in this file.", lines
    for number, line in enumerate(lines[:10]):  # in the file's order, each with its line, key and fix
        assert line.strip().startswith(f"{plan}:{number + 3}: colour{number}: unknown key") and "Fix:" in line, line


def test_problems_in_several_inventory_entries_are_listed_together(tmp_path):
    # Catches the inventory stopping at its first bad entry (each entry is validated by its own model).
    from harness.inventory import load_inventory

    inventory = write(tmp_path / "devices.yaml", """
        devices:
          - {id: host, platform: host, serail: abc}
          - {id: pixel, platform: android, serial: x, adb_port: 99999999}
        """)
    with pytest.raises(UserError) as raised:
        load_inventory(inventory)
    lines = str(raised.value).splitlines()
    assert lines[0].startswith(f"{inventory}:2: devices[0].serail: unknown key"), lines
    assert lines[1].strip().startswith(f"{inventory}:3: devices[1].adb_port:") and len(lines) == 2, lines


# --- JSON Schemas for editors -------------------------------------------------------------------------------

SCHEMA_COMMENT = "# yaml-language-server: $schema="
SHIPPED_YAML = {"plan": sorted((REPO / "plans").glob("*.yaml")), "inventory": [REPO / "devices.yaml"]}


@pytest.mark.parametrize("kind", ["plan", "inventory"])
def test_the_shipped_schema_is_what_harness_schema_prints(kind, capsys):
    # Catches a model changed without `harness schema KIND > schemas/KIND.schema.json` (editors check old keys).
    assert main(["schema", kind]) == 0
    assert capsys.readouterr().out == (REPO / "schemas" / f"{kind}.schema.json").read_text(), (
        f"schemas/{kind}.schema.json is stale: rewrite it with 'harness schema {kind} > schemas/{kind}.schema.json'")


def _undescribed(node, where: str = "") -> list[str]:
    """The properties anywhere in a JSON Schema without a description, as /$defs/Model.key paths."""
    missing: list[str] = []
    if isinstance(node, dict):
        missing += [f"{where}.{key}" for key, value in node.get("properties", {}).items()
                    if not value.get("description")]
        for key, value in node.items():
            missing += _undescribed(value, f"{where}/{key}")
    elif isinstance(node, list):
        for value in node:
            missing += _undescribed(value, where)
    return missing


@pytest.mark.parametrize("kind", ["plan", "inventory"])
def test_every_key_in_the_shipped_schemas_has_a_description(kind):
    # Catches a plan or inventory key added without Field(description=...): an editor's hover would show nothing
    # (before: 75 keys, threads, timeout_s, cooldown.*, tools.*, had none).
    schema = json.loads((REPO / "schemas" / f"{kind}.schema.json").read_text())
    assert _undescribed(schema) == []


@pytest.mark.parametrize("kind, path", [(kind, path) for kind, paths in SHIPPED_YAML.items() for path in paths],
                         ids=lambda value: getattr(value, "name", value))
def test_every_shipped_example_validates_against_its_schema_and_points_editors_at_it(kind, path):
    # Catches a schema that refuses what the loader takes (an editor would flag a working plan), and an example
    # without the comment (or pointing at a schema that is not there).
    import jsonschema
    import yaml

    schema = json.loads((REPO / "schemas" / f"{kind}.schema.json").read_text())
    errors = [error.message for error in jsonschema.Draft202012Validator(schema).iter_errors(
        yaml.safe_load(path.read_text()))]
    assert errors == []
    first = path.read_text().splitlines()[0]
    assert first.startswith(SCHEMA_COMMENT), first
    assert (path.parent / first[len(SCHEMA_COMMENT):]).resolve() == REPO / "schemas" / f"{kind}.schema.json"


def test_the_schemas_refuse_what_the_loaders_refuse():
    # Catches a schema that takes anything (no additionalProperties: false, or the platforms not told apart).
    import jsonschema

    from harness.schemas import inventory_schema, plan_schema

    plan = jsonschema.Draft202012Validator(plan_schema())
    assert plan.is_valid({"name": "x", "artifacts": ["a.onnx"], "runs": 3})
    assert not plan.is_valid({"name": "x", "artifacts": ["a.onnx"], "iteratons": 3})
    assert not plan.is_valid({"name": "x", "artifacts": ["a.onnx"], "runs": 0})
    inventory = jsonschema.Draft202012Validator(inventory_schema())
    assert inventory.is_valid({"devices": [{"id": "p", "platform": "android", "serial": "abc"}]})
    assert not inventory.is_valid({"devices": [{"id": "h", "platform": "host", "serial": "abc"}]})  # android's key
    assert not inventory.is_valid({"devices": [{"id": "x", "platform": "windows"}]})


# --- shell completion ---------------------------------------------------------------------------------------

COMMAND_NAMES = [name for action in build_parser()._actions if isinstance(action, argparse._SubParsersAction)
                 for name in action.choices]


def _completion(shell: str, capsys) -> str:
    assert main(["completion", shell]) == 0
    return capsys.readouterr().out


def test_the_bash_completion_parses_and_completes_every_command(capsys, tmp_path):
    # Catches a script bash cannot read, or one built from a parser without some commands (the registry's).
    import subprocess

    script = tmp_path / "harness.bash"
    script.write_text(_completion("bash", capsys))
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True).returncode == 0
    # What bash offers after 'harness ' (and for --format's choices): the function shtab wrote, called as bash does.
    asked = ('source "$1"; COMP_WORDS=(harness ""); COMP_CWORD=1; _shtab_harness; echo "${COMPREPLY[*]}"; '
             'COMP_WORDS=(harness export x --format ""); COMP_CWORD=4; _shtab_harness; echo "${COMPREPLY[*]}"')
    commands, formats = subprocess.run(["bash", "-c", asked, "bash", str(script)], capture_output=True, text=True,
                                       check=True).stdout.splitlines()
    assert sorted(commands.split()) == sorted(COMMAND_NAMES) and {"schema", "completion", "runs"} <= set(COMMAND_NAMES)
    assert formats.split() == ["csv", "parquet", "et-v3"]


def test_the_zsh_completion_names_every_command(capsys):
    # Catches a zsh script missing commands (zsh itself is not installed here to run it).
    script = _completion("zsh", capsys)
    assert script.startswith("#compdef harness")
    # Each command in the list zsh offers (name:'help') and in the dispatch on the command word (name) ...).
    missing = [name for name in COMMAND_NAMES if not (re.search(rf"^\s+{name}:'", script, re.M)
                                                      and re.search(rf"^\s+{name}\)", script, re.M))]
    assert missing == [], missing


def test_sim_android_hands_its_battery_flags_to_the_simulated_phone(tmp_path, monkeypatch):
    """--battery-sign and --charging reach the phone (dropped, every simulated battery would discharge at -1)."""
    import harness.sim.server

    given = {}

    def fake_start(port, root, faults, **kwargs):
        given.update(kwargs)
        raise KeyboardInterrupt  # as Ctrl-C right after start: the command returns 0

    monkeypatch.setattr(harness.sim.server, "start", fake_start)
    assert main(["sim", "android", "--root", str(tmp_path / "phone"), "--battery-sign", "1", "--charging"]) == 0
    assert given == {"discharge_sign": 1, "charging": True}
    assert main(["sim", "android", "--root", str(tmp_path / "phone")]) == 0
    assert given == {"discharge_sign": -1, "charging": False}


@pytest.mark.slow  # the zoo's recipes import torch and the exporter
def test_zoo_list_names_every_build_only_takes_and_which_a_plain_build_makes():
    """The build names --only takes were written nowhere but in the error for a wrong one.  Every name listed is
    one --only accepts (an unknown one is refused naming the known ones: the listed set is that set), and the
    large LLMs are marked as made only when named."""
    import json

    from harness.errors import UserError
    from harness.zoo import build_all
    from tests.helpers import cli_in_process

    listed = json.loads(cli_in_process("zoo", "list", "--json").stdout)
    with pytest.raises(UserError) as refused:
        build_all(Path("/nonexistent-zoo-out"), only=["no-such-build"])
    known = refused.value.fix.removeprefix("choose from: ").removesuffix(".").split(", ")
    assert sorted(r["name"] for r in listed) == sorted(known)
    by_name = {r["name"]: r for r in listed}
    assert by_name["qwen2-0.5b-arch-int4-xnnpack"]["default"] is False
    assert by_name["silero-vad-fp32"]["default"] is True and by_name["silero-vad-fp32"]["suffix"] == ".onnx"
    text = cli_in_process("zoo", "list").stdout
    assert "qwen2-0.5b-arch-int4-xnnpack" in text and "only with --only" in text
