#!/usr/bin/env bash
# Debian packages the tests use: chromium (the report must render), adb (the real adb server talks to the
# simulated phone), sctk (sclite cross-checks WER), espeak-ng (a second corpus voice), and Android's shell and
# userland for the simulated phone: mksh, toybox, run in a bubblewrap sandbox.
# Installs only what is missing, so a second run costs nothing.
set -euo pipefail
PACKAGES=(chromium adb sctk espeak-ng mksh toybox bubblewrap)
missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "installing Debian packages: ${missing[*]}" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
