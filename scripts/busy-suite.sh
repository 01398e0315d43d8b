#!/usr/bin/env bash
# The test suite on a busy machine: a fresh clone of this repository, a CPU hog beside it the whole time,
# `make test` once (setup included: this is .ci/run), then `make test` again N times in the same clone (the
# setup is done; the reference builds other tests take as input are reused from ~/.cache/harness-test-builds). One line per run.
#   bash scripts/busy-suite.sh [N=9] [CLONE_DIR=/tmp/harness-busy]
set -u
N=${1:-9}
CLONE=${2:-/tmp/harness-busy}
REPO=$(cd "$(dirname "$0")/.." && pwd)
rm -rf "$CLONE" && git clone -q "$REPO" "$CLONE" && cd "$CLONE" || exit 2
echo "commit $(git log --oneline -1)"
yes > /dev/null & HOG=$!
trap 'kill $HOG' EXIT
start=$(date +%s)
if make test > "$CLONE/run-0.log" 2>&1; then r=PASS; else r=FAIL; fi
echo "run 0 (make test, fresh venv): $r $(( $(date +%s) - start )) s $(tail -1 "$CLONE/run-0.log")"
for i in $(seq 1 "$N"); do
  s=$(date +%s)
  if make test > "$CLONE/run-$i.log" 2>&1; then r=PASS; else r=FAIL; fi
  echo "run $i: $r $(( $(date +%s) - s )) s $(tail -1 "$CLONE/run-$i.log")"
done
