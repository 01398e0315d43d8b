"""Push throughput of the harness against `adb push` of the same file to the same simulated phone.

Alternates the two (ABAB...) on a fresh file each round so neither side is skipped as
already present, through a private adb server.  Prints MB/s for both and the ratio
(harness / adb push); the target is at least 0.9.

    python benchmarks/push_throughput.py [--mb 64] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from harness.artifacts.manifest import sha256_of
    from harness.devices.android import Config, Device
    from harness.sim.adb_server import private_adb_server

    with private_adb_server() as adb, tempfile.TemporaryDirectory() as tmp:
        server, serial = adb.attach(Path(tmp) / "phone")
        device = Device(Config(id="sim", platform="android", serial=serial, adb_port=adb.port))
        ours, theirs = [], []
        for round_ in range(args.rounds):
            for who in ("harness", "adb"):
                blob = Path(tmp) / f"{who}-{round_}.bin"
                blob.write_bytes(os.urandom(args.mb * 2**20))
                sha = sha256_of(blob)
                t0 = time.perf_counter()
                if who == "harness":
                    device.push(blob, sha)  # includes the on-phone sha256 checks before and after
                    ours.append(args.mb / (time.perf_counter() - t0))
                else:
                    adb.adb("-s", serial, "push", str(blob), f"/data/local/tmp/adb/{blob.name}", timeout_s=600)
                    theirs.append(args.mb / (time.perf_counter() - t0))
                blob.unlink()
        adb.detach(server, serial)
    h, a = statistics.median(ours), statistics.median(theirs)
    print(f"{args.mb} MiB x {args.rounds} rounds: harness {h:.1f} MB/s, adb push {a:.1f} MB/s, ratio {h / a:.2f} (target >= 0.9)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
