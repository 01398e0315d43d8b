"""What the thermal sampler asks of a phone: commands, bytes and round-trip time per reading.

Against the simulated phone through a private adb server.  One reading is a single
`cat` of every thermal zone's type and temperature and three CPU clocks (sysfs reads,
no process per file); every fifth reading adds `dumpsys thermalservice` and
`dumpsys battery`.

    python benchmarks/sampler_cost.py [--readings 50]
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
    parser.add_argument("--readings", type=int, default=50)
    args = parser.parse_args()

    from harness.devices.android import Config, Device
    from harness.sim.server import start

    adb = shutil.which("adb")
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
        plain, with_dumpsys, sizes = [], [], []
        for i in range(args.readings):
            before = server.phone.commands
            t0 = time.perf_counter()
            readings = device.sample_thermals()
            (with_dumpsys if i % Device.DUMPSYS_EVERY == 0 else plain).append((time.perf_counter() - t0) * 1000)
            sizes.append((len(readings), server.phone.commands - before))
        subprocess.run([adb, "-P", str(port), "kill-server"], env=env, capture_output=True)
        server.shutdown()
    cmds_plain = statistics.median(c for (_, c), i in zip(sizes, range(len(sizes))) if i % Device.DUMPSYS_EVERY)
    print(f"sysfs-only reading: {cmds_plain:.0f} shell command(s), {sizes[1][0]} values, median {statistics.median(plain):.1f} ms")
    print(f"reading with dumpsys (every {Device.DUMPSYS_EVERY}th): {sizes[0][1]} commands, "
          f"median {statistics.median(with_dumpsys):.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
