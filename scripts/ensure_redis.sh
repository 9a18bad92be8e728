#!/usr/bin/env bash
# Make sure redis-server is installed (tests and `ponder up` start their own).
set -euo pipefail
command -v redis-server >/dev/null 2>&1 && exit 0
if command -v apt-get >/dev/null 2>&1; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "installing redis-server with apt-get" >&2
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq redis-server >/dev/null
  # The Debian package starts a system service; ponder runs its own servers.
  ($SUDO systemctl disable --now redis-server >/dev/null 2>&1 || true)
  exit 0
fi
if command -v brew >/dev/null 2>&1; then
  brew install redis
  exit 0
fi
echo "redis-server is not installed: install it (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis) or set REDIS_URL" >&2
exit 1
