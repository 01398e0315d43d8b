"""harness schema plan|inventory: the JSON Schema of a plan or an inventory, for editors."""

from __future__ import annotations

import sys

from harness.commands.common import RAW
from harness.schemas import SCHEMAS, schema_text


def add_parser(sub) -> None:
    p = sub.add_parser(
        "schema", help="print the JSON Schema of a plan or an inventory (editors complete and check with it)",
        formatter_class=RAW,
        description="Print the JSON Schema (draft 2020-12) of a plan or of an inventory (devices.yaml), generated\n"
                    "from the models that load them: every key, its type, default and limits. The same files ship\n"
                    "in schemas/; a first line such as\n"
                    "  # yaml-language-server: $schema=../schemas/plan.schema.json\n"
                    "(the path relative to the YAML file) lets an editor with a YAML language server complete keys\n"
                    "and flag mistakes as they are typed.",
        epilog="example:\n  harness schema plan > my-plan.schema.json")
    p.add_argument("kind", choices=list(SCHEMAS), metavar="KIND", help="plan or inventory")
    p.set_defaults(func=run)


def run(args) -> int:
    sys.stdout.write(schema_text(args.kind))
    return 0
