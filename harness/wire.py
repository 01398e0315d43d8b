"""Strings two processes of the harness agree on: a leaf module, imported by both sides."""

# The host worker's last stdout line: this prefix, then one JSON object with every timing.
RESULT_PREFIX = "HARNESS_RESULT "
# The host fork server's first stdout line once its runtimes are imported.
FORKSERVER_READY = "HARNESS_FORKSERVER_READY"
# The host LLM worker's line per generation: this prefix, then {"phase", "text", "stats"} (stats.h's JSON).
GENERATION_PREFIX = "HARNESS_GENERATION "
