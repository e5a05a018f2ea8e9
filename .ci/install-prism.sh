#!/usr/bin/env bash
# Installs Stoplight Prism (the X API contract peer) into .ci/node/, once.
# 5.14.2 is the newest Prism that runs on Node 20; tests look for .ci/node/node_modules/.bin/prism.
set -euo pipefail

version="5.14.2"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
prefix="$here/node"
bin="$prefix/node_modules/.bin/prism"

if [ -x "$bin" ] && [ "$("$bin" --version 2>/dev/null)" = "$version" ]; then
    echo "prism $version already installed at $bin"
    exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
    echo "npm not found: install Node.js 20 (e.g. apt-get install -y nodejs npm)" >&2
    exit 1
fi

mkdir -p "$prefix"
# A package.json of our own keeps npm from walking up and installing into the repo root.
[ -f "$prefix/package.json" ] || echo '{"name": "carebot-ci-tools", "private": true}' > "$prefix/package.json"
npm install --prefix "$prefix" --no-audit --no-fund --loglevel=error "@stoplight/prism-cli@$version"
echo "prism $("$bin" --version) installed at $bin"
