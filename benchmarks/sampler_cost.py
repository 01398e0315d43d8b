"""What the thermal sampler asks of a phone: commands, bytes and round-trip time per reading.

Against the simulated phone through a private adb server.  One reading is a single
`grep -s -H .` of every thermal zone's type and temperature and three CPU clocks (sysfs reads,
no process per file, each value with its file name); every fifth reading adds `dumpsys thermalservice` and
`dumpsys battery`.

    python benchmarks/sampler_cost.py [--readings 50]
"""

from __future__ import annotations

import argparse
import statistics
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
    from harness.sim.adb_server import private_adb_server

    with private_adb_server() as adb, tempfile.TemporaryDirectory() as tmp:
        server, serial = adb.attach(Path(tmp) / "phone")
        device = Device(Config(id="sim", platform="android", serial=serial, adb_port=adb.port))
        plain, with_dumpsys, sizes = [], [], []
        for i in range(args.readings):
            before = server.phone.commands
            t0 = time.perf_counter()
            readings = device.sample_thermals()
            (with_dumpsys if i % Device.DUMPSYS_EVERY == 0 else plain).append((time.perf_counter() - t0) * 1000)
            sizes.append((len(readings), server.phone.commands - before))
        adb.detach(server, serial)
    cmds_plain = statistics.median(c for (_, c), i in zip(sizes, range(len(sizes))) if i % Device.DUMPSYS_EVERY)
    print(f"sysfs-only reading: {cmds_plain:.0f} shell command(s), {sizes[1][0]} values, median {statistics.median(plain):.1f} ms")
    print(f"reading with dumpsys (every {Device.DUMPSYS_EVERY}th): {sizes[0][1]} commands, "
          f"median {statistics.median(with_dumpsys):.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
