"""Nightly runs: compare with a baseline run, decide, and say so in forms CI and cron can act on."""
