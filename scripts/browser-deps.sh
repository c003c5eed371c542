#!/usr/bin/env bash
# Installs what the browser tests need and nothing downloads at test time: Debian's Chromium
# (Playwright's own browser download cannot work on these machines).
set -euo pipefail
if ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "Chromium is missing: run 'sudo apt-get install chromium' (the browser tests need it)." >&2
    exit 1
  fi
fi
