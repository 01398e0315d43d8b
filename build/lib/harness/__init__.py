"""harness: a device-lab latency and accuracy harness for on-device speech and language models."""

__version__ = "0.1.0"
