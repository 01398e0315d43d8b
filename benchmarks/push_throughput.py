"""Push throughput of the harness against `adb push` of the same file to the same simulated phone.

Alternates the two (ABAB...) on a fresh file each round so neither side is skipped as
already present, through a private adb server.  Prints MB/s for both and the ratio
(harness / adb push); the target is at least 0.9.

    python benchmarks/push_throughput.py [--mb 64] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
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
    from harness.sim.server import start

    adb = shutil.which("adb")
    if adb is None:
        print("adb is missing: apt-get install adb", file=sys.stderr)
        return 2
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "ANDROID_ADB_SERVER_PORT": str(port)}
    subprocess.run([adb, "-P", str(port), "start-server"], env=env, check=True, capture_output=True)
    with tempfile.TemporaryDirectory() as tmp:
        server = start(0, Path(tmp) / "phone")
        serial = f"127.0.0.1:{server.server_address[1]}"
        subprocess.run([adb, "-P", str(port), "connect", serial], env=env, check=True, capture_output=True)
        device = Device(Config(id="sim", platform="android", serial=serial, adb_port=port))
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
                    subprocess.run([adb, "-P", str(port), "-s", serial, "push", str(blob),
                                    f"/data/local/tmp/adb/{blob.name}"], env=env, check=True, capture_output=True)
                    theirs.append(args.mb / (time.perf_counter() - t0))
                blob.unlink()
        subprocess.run([adb, "-P", str(port), "kill-server"], env=env, capture_output=True)
        server.shutdown()
    h, a = statistics.median(ours), statistics.median(theirs)
    print(f"{args.mb} MiB x {args.rounds} rounds: harness {h:.1f} MB/s, adb push {a:.1f} MB/s, ratio {h / a:.2f} (target >= 0.9)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
