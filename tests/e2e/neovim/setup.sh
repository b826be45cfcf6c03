#!/usr/bin/env bash
# Installs what the Neovim e2e test needs: Debian's neovim (apt-get, never a downloaded
# build) and the repository's .venv with ghostline in it.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../../.." && pwd)

if ! command -v nvim >/dev/null; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y neovim
fi

# The test starts `ghostline serve` from the repository's .venv (created here in a fresh clone).
if [ ! -x "$repo/.venv/bin/ghostline" ]; then
  [ -x "$repo/.venv/bin/python" ] || python3 -m venv "$repo/.venv"
  "$repo/.venv/bin/pip" install -q -e "$repo"
fi
nvim --version | head -1
