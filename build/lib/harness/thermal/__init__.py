"""Thermal and clock telemetry: sysfs readers, the background sampler and the cooldown gate."""

# Telemetry dumps `harness parse` reads besides the runners' output (format name -> module with parse(text)).
DUMPS = {"thermalservice": "harness.thermal.thermalservice"}
