#!/usr/bin/env bash
# HAProxy, Debian's package, for `make run-scaled` and the scale tests: installed when missing
# (as root, with apt-get), otherwise a message saying how. Fast when it is there already.
# --optional: say what is missing but do not fail (make test: the scale tests then skip).
set -uo pipefail
PATH="$PATH:/usr/sbin:/sbin"
command -v haproxy >/dev/null 2>&1 && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "setup: installing HAProxy (apt-get install haproxy)"
  if DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy > /dev/null 2>&1 \
    || { apt-get update -qq > /dev/null 2>&1 \
         && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy > /dev/null 2>&1; }; then
    exit 0
  fi
  echo "setup: apt-get could not install haproxy" >&2
else
  echo "setup: HAProxy is needed by make run-scaled and the scale tests, and it is not installed." >&2
  echo "       Install it as root: apt-get install haproxy (Debian/Ubuntu), or your system's package." >&2
fi
[ "${1:-}" = "--optional" ] && exit 0
exit 1
