#!/usr/bin/env bash
# Installs the pinned Node and browser SDKs the tests drive (tests/sdks/package.json) from npm, once:
# they are cached under the data folder, keyed by the package list, so reruns do not reinstall.
# Prints the node_modules folder. Several runs at once are safe (a lock, then an atomic rename).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
spec="$here/tests/sdks/package.json"
home="${GROWTH_STACK_HOME:-$here/.growth_stack}"
cache="${GROWTH_STACK_SDK_CACHE:-$home/test_sdks}"
key="$(sha256sum "$spec" | cut -c1-16)"
dest="$cache/$key"
if [ -f "$dest/.installed" ]; then echo "$dest/node_modules"; exit 0; fi
command -v npm >/dev/null || { echo "npm is not installed: install Node.js 20 and npm (apt-get install nodejs npm) to run the SDK tests." >&2; exit 1; }
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9
if [ ! -f "$dest/.installed" ]; then
  tmp="$(mktemp -d "$cache/.installing.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  cp "$spec" "$tmp/package.json"
  # --ignore-scripts: nothing from the registry runs at install time.
  npm install --prefix "$tmp" --no-audit --no-fund --ignore-scripts --loglevel=error >&2
  touch "$tmp/.installed"
  rm -rf "$dest"
  mv "$tmp" "$dest"
  trap - EXIT
fi
echo "$dest/node_modules"
