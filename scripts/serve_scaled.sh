#!/usr/bin/env bash
# Serves the production topology on this machine, on the ports of `make run`:
# GIFTBOT_RASA_INSTANCES Rasa servers and GIFTBOT_ACTION_INSTANCES action servers, each a process
# on a port of its own, behind HAProxy on :5005 (Rasa) and :5055 (actions); the web app on :8080;
# PostgreSQL (wallet and tracker store), Redis (lock store, socket.io rooms), RabbitMQ (events).
# Ctrl-C stops them all. Logs go to var/log/scaled/.
set -euo pipefail
cd "$(dirname "$0")/.."
export TF_CPP_MIN_LOG_LEVEL=3 SQLALCHEMY_SILENCE_UBER_WARNING=1
export PATH="$PATH:/usr/sbin:/sbin"
# As make run: the demo page's sign-in is on, and var/ is for this user alone.
export GIFTBOT_DEMO_MODE="${GIFTBOT_DEMO_MODE:-1}"
umask 077
BIN=.venv/bin
LOGS=var/log/scaled
mkdir -p "$LOGS"
chmod -R go= var

scripts/install_haproxy.sh
# The settings (bot/settings.py) as the environment of every server: service URLs, and the
# scaled wallet store as GIFTBOT_DB_URL.
eval "$("$BIN/python" -m bot.scaled env)"
# (Rasa prints import-time deprecation warnings: they say nothing about this set-up.)
PYTHONWARNINGS=ignore "$BIN/python" -m bot.scaled databases
"$BIN/giftbot" wallet init > /dev/null
rasa_port=${GIFTBOT_RASA_PORT:-5005}
actions_port=${GIFTBOT_ACTIONS_PORT:-5055}
web_port=${GIFTBOT_WEB_PORT:-8080}
# GIFTBOT_WIDGET_ORIGINS: the pages the widget runs on (default: the web app's), allowed
# credentials (engine.io long-polling's sticky cookie behind a balancer); no other origin.
read -r api_token rasa_host widget_origins < <("$BIN/python" -c 'from bot.settings import get_settings
s = get_settings(); print(s.rasa_api_token, s.rasa_host, *s.widget_origins)')
read -r -a widget_origins <<< "$widget_origins"

pids=()
any_alive() {
  for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && return 0; done
  return 1
}
stop_all() {
  trap - EXIT INT TERM
  echo; echo "  Stopping ${#pids[@]} processes..."
  kill "${pids[@]}" 2>/dev/null || true
  for _ in $(seq 60); do  # Rasa takes a while to close; after 30 s it is killed
    any_alive || break
    sleep 0.5
  done
  kill -9 "${pids[@]}" 2>/dev/null || true
}
trap stop_all EXIT INT TERM

# Rasa's channels: credentials.yml plus each messaging platform whose GIFTBOT_<PLATFORM>_...
# settings are set (bot/channels/registry.py), as in make run.
echo "  Messaging channels: $("$BIN/giftbot" channels credentials)"

rasa_ports=() action_ports=()
for i in $(seq 1 "$GIFTBOT_ACTION_INSTANCES"); do
  port=$((actions_port + 1000 + i))
  action_ports+=("$port")
  # Each answers Rasa only (the secret in deploy/endpoints.scaled.yml), on loopback.
  "$BIN/python" -m bot.action_server --port "$port" --logging-config-file logging.yml \
    > "$LOGS/actions-$i.log" 2>&1 &
  pids+=($!)
done
for i in $(seq 1 "$GIFTBOT_RASA_INSTANCES"); do
  port=$((rasa_port + 1000 + i))
  rasa_ports+=("$port")
  # Rasa's HTTP API (the agent console's way in) is enabled only with the generated token;
  # each server listens on loopback, HAProxy on GIFTBOT_RASA_HOST (loopback by default).
  "$BIN/rasa" run --model models/giftbot.tar.gz --port "$port" --interface 127.0.0.1 \
    --credentials var/credentials.yml --endpoints deploy/endpoints.scaled.yml \
    --cors "${widget_origins[@]}" --enable-api --jwt-secret "$api_token" --jwt-method HS256 \
    --logging-config-file logging.yml > "$LOGS/rasa-$i.log" 2>&1 &
  pids+=($!)
done
"$BIN/python" -m bot.scaled haproxy --bind "$rasa_host" \
  --rasa-port "$rasa_port" --actions-port "$actions_port" \
  --rasa "${rasa_ports[@]}" --actions "${action_ports[@]}" > var/haproxy.cfg
haproxy -db -f var/haproxy.cfg > "$LOGS/haproxy.log" 2>&1 &
pids+=($!)
"$BIN/python" -m bot.web > "$LOGS/web.log" 2>&1 &
pids+=($!)

cat <<MSG

  Gift card assistant, scaled: $GIFTBOT_RASA_INSTANCES Rasa servers, $GIFTBOT_ACTION_INSTANCES action servers
  ---------------------------------------------------------------------
  Rasa (HAProxy)     http://localhost:$rasa_port   servers on ports ${rasa_ports[*]}
  Actions (HAProxy)  http://localhost:$actions_port   servers on ports ${action_ports[*]}
  Shopper demo       http://localhost:$web_port
  Agent console      http://localhost:$web_port/agent   (demo agent: sam / harbor-lantern-42)
$("$BIN/python" -m bot.scaled summary)
  Logs               $LOGS/

MSG
"$BIN/giftbot" wallet seed --demo
echo
echo "  Starting the Rasa servers (about 30 seconds each; two cores start two at a time)..."
for port in "${rasa_ports[@]}"; do
  until curl -fs "http://127.0.0.1:$port/" > /dev/null; do
    for pid in "${pids[@]}"; do
      kill -0 "$pid" 2>/dev/null || { echo "  A server stopped; see $LOGS/" >&2; exit 1; }
    done
    sleep 2
  done
  echo "  Rasa server on :$port is up"
done
echo "  Ready: http://localhost:$web_port  (Ctrl-C stops everything)"
# A server that dies now is taken out by HAProxy's health checks; the others carry on.
wait
