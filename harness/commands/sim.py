"""harness sim android: a simulated phone on loopback, for trying plans without hardware."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

from harness import validation as number  # one check per kind of number, as the files' models use
from harness.commands.common import RAW
from harness.commands.measuring import stop_on_signals
from harness.errors import UserError


def add_parser(sub) -> None:
    p = sub.add_parser("sim", help="run a simulated phone for trying plans without hardware", formatter_class=RAW,
                       description="A simulated Snapdragon 8 Gen 3 (SM8650) phone speaking the ADB device protocol on\n"
                                   "loopback; Debian's adb server connects to it like to a real phone. Its benchmark\n"
                                   "binaries run the pushed models on this machine's CPU and print what the real ones print.")
    simsub = p.add_subparsers(dest="sim_platform", required=True, metavar="PLATFORM")
    s_ = simsub.add_parser("android", help="a simulated Android phone")
    s_.add_argument("--port", type=number.port_or_any, default=0, help="TCP port (default: any free one; avoid 5555-5585)")
    s_.add_argument("--root", type=Path, default=Path("reports/sim-phone"), help="folder standing in for its storage")
    s_.add_argument("--fault", choices=["crash", "hang", "storage-full", "hot"], help="misbehave on purpose")
    s_.add_argument("--battery-sign", type=int, choices=[-1, 1], default=-1,
                    help="sign of the battery gauge's current while discharging: -1 as the kernel documents "
                         "current_now, +1 as some phones' gauges report it (default: -1)")
    s_.add_argument("--charging", action="store_true",
                    help="the phone is on its charger: energy is not measured and cells say so")
    s_.set_defaults(func=run)


def run(args) -> int:
    import time

    from harness.sim.phone import Faults
    from harness.sim.sandbox import write_stand_ins
    from harness.sim.server import start

    faults = Faults(crash_runner=args.fault == "crash", hang_runner=args.fault == "hang",
                    storage_full=args.fault == "storage-full", hot=args.fault == "hot")
    _writable_folder(args.root)
    handlers = stop_on_signals([])  # SIGTERM and SIGHUP stop it as Ctrl-C does: the phone is shut down
    server = None
    try:
        server = start(args.port, args.root, faults, discharge_sign=args.battery_sign,
                       charging=args.charging)
        _announce(server.server_address[1], args.root, write_stand_ins(args.root / "host-tools"))
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()  # what the phone's shell still runs, and its daemon's socket folder
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    return 0


def _announce(port: int, root: Path, tools: dict) -> None:
    """How to connect the phone, and the tools its benchmark binaries stand in as."""
    listed = ", ".join(f"{name}: {path.resolve()}" for name, path in tools.items())
    print(f"simulated SM8650 phone on 127.0.0.1:{port} (storage in {root}); connect it with:\n"
          f"  adb connect 127.0.0.1:{port}\n"
          f"and list it in the inventory with serial 127.0.0.1:{port}; its benchmark binaries stand in as\n"
          f"  tools: {{{listed}}}\nCtrl-C (or SIGTERM, SIGHUP) stops it.", file=sys.stderr)


def _writable_folder(root: Path) -> None:
    """--root of the simulated phone: a folder it can write (made if missing), checked before anything starts."""
    import tempfile

    try:
        root.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=root).close()
    except OSError as exc:
        raise UserError(f"cannot keep the simulated phone's storage here ({exc.strerror}).", path=root,
                        fix="give --root a folder you can write (it is made if missing), e.g. --root /tmp/phone."
                        ) from None
