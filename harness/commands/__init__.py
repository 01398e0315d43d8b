"""One module per command of the command line (as asv keeps one per command).

Each module owns its parser and its handler: ``add_parser(sub)`` adds the command (help, flags, epilog) to the
top-level subparsers and points ``func`` at its ``run(args) -> int`` (a command with subcommands has one handler
each).  ``harness.cli`` builds the top-level parser from its registry of these modules and dispatches; what
several commands share is in ``common`` (options, run ids, outputs), ``measuring`` (progress, signals) and
``faults`` (store and output faults as one line with the fix).
"""
