#!/usr/bin/env bash
# Set-up for the shopper web chat: the widget's npm dependencies (socket.io client, axe-core for
# the accessibility test) and Debian's chromium for the browser tests (tests/web); with
# --no-browser, only the npm dependencies (all that `make run` needs). Idempotent: when
# package-lock.json is unchanged and chromium is there, it does nothing and takes milliseconds.
set -euo pipefail
cd "$(dirname "$0")/.."
browser=yes
[[ ${1:-} == --no-browser ]] && browser=no

stamp=node_modules/.giftbot-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [[ ! -f $stamp || "$(cat "$stamp")" != "$want" ]]; then
  if ! command -v npm > /dev/null; then
    echo "setup_web: npm is missing; install Node.js 18 or newer (Debian: apt-get install nodejs npm)" >&2
    exit 1
  fi
  echo "setup_web: installing the widget's npm dependencies (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
fi

if [[ $browser == yes && ! -x /usr/bin/chromium ]]; then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get > /dev/null; then
    echo "setup_web: installing Debian's chromium for the browser tests (apt-get install chromium)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq chromium > /dev/null 2>&1 \
      || { apt-get update -qq && apt-get install -y -qq chromium > /dev/null; }
  else
    echo "setup_web: /usr/bin/chromium is missing, so the browser tests will be skipped." >&2
    echo "setup_web: install it as root with: apt-get install -y chromium" >&2
  fi
fi
