#!/usr/bin/env bash
# Installs what trustroot needs on a fresh Debian machine: the Debian TPM peers
# (swtpm, its tools, tpm2-tools, tpm2-abrmd with its TCTI and a D-Bus daemon for
# it), python3 for the stand-in TPM device of the tests (test/support/pty-relay.py)
# and the npm dependencies.
# Idempotent: packages already present are not fetched again.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(swtpm swtpm-tools tpm2-tools tpm2-abrmd libtss2-tcti-tabrmd0 dbus-daemon python3)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo_cmd=()
  [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
fi

npm ci --no-audit --no-fund
