"""harness devices: the inventory, and which devices answer now (exit 1 when one does not)."""

from __future__ import annotations

import sys

from harness.commands.common import RAW, emit_json, existing_inventory, inventory_arg
from harness.termsafe import rich_safe, term_safe


def add_parser(sub) -> None:
    p = sub.add_parser("devices", help="list the inventory and which devices answer", formatter_class=RAW,
                       description="List every device in the inventory and whether it is reachable now.\n"
                                   "Exit 0 when every device answered, 1 when one did not (its reason is in the "
                                   "table), 2 on a bad inventory.")
    inventory_arg(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


def run(args) -> int:
    from harness.inventory import load_inventory
    from harness.words import counted

    rows = _probed(load_inventory(existing_inventory(args.inventory)).devices)
    # A device that does not answer is what a lab's morning check looks for: exit 1, so a script can stop there.
    silent = [r["id"] for r in rows if not r["reachable"]]
    if args.json:
        emit_json(rows)
        return 1 if silent else 0
    _print_table(rows, args.inventory)
    if silent:
        print(term_safe(f"{counted(len(silent), 'device')} of {len(rows)} did not answer: {', '.join(silent)} "
                        "(the reason is in the table)."), file=sys.stderr)
        return 1
    return 0


def _probed(configs) -> list[dict]:
    """One row per device as a run sees it, with whether it answers now (and why not)."""
    from harness.devices import probe

    rows = []
    for config, unexpanded in _expanded(configs):
        ok, why = (False, unexpanded) if unexpanded else probe(config)
        rows.append({"id": config.id, "platform": config.platform, "reachable": ok, "detail": why,
                     "backends": list(config.backends), "labels": list(config.labels), "soc": config.soc})
    return rows


def _print_table(rows: list[dict], inventory) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"devices in {inventory}")
    for col in ("id", "platform", "soc", "backends", "reachable"):
        table.add_column(col)
    for r in rows:
        # What answered is worth a look too: the phone's model, Android and SoC as it reports them.
        state = (f"[green]yes[/] ({rich_safe(r['detail'])})" if r["reachable"]
                 else f"[red]no[/] ({rich_safe(r['detail'])})")
        table.add_row(*map(rich_safe, (r["id"], r["platform"], r["soc"] or "–", ", ".join(r["backends"]))), state)
    Console().print(table)


def _expanded(configs) -> list:
    """Each entry as a run sees it, with None or why it could not be expanded: ``serial: '*'`` is every phone
    attached now (one row each), as `harness run` expands it; with no adb server or no phone it stays one row."""
    from harness.errors import UserError

    out = []
    for config in configs:
        try:
            out += [(each, None) for each in config.expand()]
        except UserError as exc:
            out.append((config, str(exc)))
    return out
