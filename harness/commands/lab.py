"""harness lab join: this controller host as a node of a Ray lab."""

from __future__ import annotations

import shlex
import sys

from harness import validation as number  # one check per kind of number, as the files' models use
from harness.commands.common import INVENTORY_HELP, RAW, existing_inventory, inventory_arg
from harness.errors import UserError
from harness.termsafe import term_safe


def add_parser(sub) -> None:
    p = sub.add_parser("lab", help="join this controller host to a Ray lab of several hosts")
    labsub = p.add_subparsers(dest="lab_command", required=True, metavar="COMMAND")
    j = labsub.add_parser(
        "join", help="start this host's Ray node, advertising the devices that answer here", formatter_class=RAW,
        description="Start a Ray node on this controller host (the head with --head, else joining ADDRESS) that\n"
                    "advertises every device of --inventory that answers now as the Ray resource\n"
                    "'harness-device:ID'. Runs of 'harness run PLAN --lab HEAD:PORT' for that device are then\n"
                    "sent here, measured with this host's inventory entry (its adb port, binaries, SDK paths),\n"
                    "and their results streamed to the driver's database. Rejoin after plugging phones in or out.",
        epilog="a lab of two hosts:\n"
               "  host-a$ harness lab join --head --inventory devices.yaml        # prints the address\n"
               "  host-b$ harness lab join host-a:6379 --inventory devices.yaml\n"
               "  host-a$ harness run plans/lab.yaml --lab host-a:6379\n"
               "stop a node with 'ray stop'.")
    j.add_argument("address", nargs="?", help="the head's HOST:PORT (omit with --head)")
    j.add_argument("--head", action="store_true", help="start the lab's head node here")
    j.add_argument("--port", type=number.port, default=6379, help="the head's port (default 6379)")
    inventory_arg(j, "this host's " + INVENTORY_HELP)
    j.add_argument("--dry-run", action="store_true", help="print the ray command instead of running it")
    j.set_defaults(func=run_join)


def run_join(args) -> int:
    import subprocess

    from harness.lab.node import answering_devices, join_env, ray_start_argv, resources_for

    if args.head == bool(args.address):
        raise UserError("give the head's address, or --head to start the head here (not both).",
                        fix="harness lab join --head, or harness lab join HEAD:PORT")
    found = answering_devices(existing_inventory(args.inventory))
    for device_id, ok, why in found:
        print(term_safe(f"  {'advertise' if ok else 'skip     '} {device_id}" + ("" if ok else f": {why}")),
              file=sys.stderr)
    argv = ray_start_argv(None if args.head else args.address, resources_for([d for d, ok, _ in found if ok]),
                          port=args.port)
    if args.dry_run:
        print(" ".join(shlex.quote(a) for a in argv))
        return 0
    return subprocess.call(argv, env=join_env(args.inventory))
