#!/usr/bin/env bash
# Installs what the e2e test needs, offline-safe after this step: Debian's chromium,
# ripgrep and libkrb5-dev, then code-server and playwright-core from npm. No tool
# downloads a browser or a VS Code build: @vscode/ripgrep gets Debian's rg from a seeded
# cache, and playwright-core never fetches browsers.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v rg >/dev/null || missing+=(ripgrep)
dpkg -s libkrb5-dev >/dev/null 2>&1 || missing+=(libkrb5-dev)
if ((${#missing[@]})); then
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
fi

# The language server runs from the repository's .venv (created here in a fresh clone).
if [ ! -x "$repo/.venv/bin/python" ]; then
  python3 -m venv "$repo/.venv"
  "$repo/.venv/bin/pip" install -q -e "$repo"
fi

(cd "$here/.." && { [ -d node_modules ] || npm ci; } && npm run package)

if [ ! -x "$here/node_modules/.bin/code-server" ] || [ ! -d "$here/node_modules/playwright-core" ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  mkdir -p "$tmp/vscode-ripgrep-cache-1.15.11"
  tar czf "$tmp/vscode-ripgrep-cache-1.15.11/ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz" \
    -C "$(dirname "$(command -v rg)")" rg
  # code-server's postinstall builds native modules against Node's headers in /usr.
  (cd "$here" && TMPDIR="$tmp" npm_config_unsafe_perm=true npm_config_yes=true \
    npm_config_nodedir=/usr PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci)
fi
