"""The simulated phone: an ADB device on loopback that Debian's real adb server connects to."""
