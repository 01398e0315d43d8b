"""Thermal and clock telemetry: sysfs readers, the background sampler and the cooldown gate."""
