#!/usr/bin/env bash
# chromium.sh - Debian's Chromium for the tests that open the HTML run report headless
# (driven by playwright pointed at /usr/bin/chromium; playwright's own browser download is
# never used). Idempotent: installs the package only when /usr/bin/chromium is missing.
# Prints one "CHROMIUM READY" line. Usage: bash chromium.sh [start]
set -euo pipefail
if [ ! -x /usr/bin/chromium ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends chromium >/dev/null
fi
echo "CHROMIUM READY: $(/usr/bin/chromium --version 2>/dev/null | head -1)"
