#!/usr/bin/env bash
# Serves the assistant on the embedded defaults: action server on :5055, Rasa on :5005
# (REST and socket.io), the shopper demo page with the chat widget on :8080 (bot/web).
# Ctrl-C stops them all. Logs go to var/log/.
set -euo pipefail
cd "$(dirname "$0")/.."
export TF_CPP_MIN_LOG_LEVEL=3 SQLALCHEMY_SILENCE_UBER_WARNING=1
# No telemetry: Rasa would send usage data and, through sentry-sdk, exceptions (whose messages
# can quote what a shopper typed) to Rasa's servers (SECURITY.md: dependencies).
export RASA_TELEMETRY_ENABLED=false
# make run is the demo: anyone may sign in as a demo customer on the demo page.
export GIFTBOT_DEMO_MODE="${GIFTBOT_DEMO_MODE:-1}"
# The stores, logs and secrets under var/ are for this user alone (0700 folders, 0600 files);
# chmod also closes up what an older version left readable.
umask 077
mkdir -p var/log
chmod -R go= var
BIN=.venv/bin

# The action server answers only Rasa, which sends this secret (endpoints.yml), and listens on
# GIFTBOT_ACTIONS_HOST (loopback by default): bot/action_server.py.
GIFTBOT_ACTION_SERVER_SECRET=$("$BIN/python" -c 'from bot.settings import get_settings
print(get_settings().action_server_secret)')
export GIFTBOT_ACTION_SERVER_SECRET
# logging.yml: no shopper's text, slot value or token in any log (bot/log_redaction.py).
"$BIN/python" -m bot.action_server --port "${GIFTBOT_ACTIONS_PORT:-5055}" \
  --logging-config-file logging.yml \
  > var/log/actions.log 2>&1 &
actions_pid=$!
"$BIN/python" -m bot.web > var/log/web.log 2>&1 &
web_pid=$!
trap 'kill $actions_pid $web_pid 2>/dev/null || true' EXIT INT TERM

cat <<MSG

  Gift card assistant
  -------------------
  Rasa server     http://localhost:${GIFTBOT_RASA_PORT:-5005}   (REST: POST /webhooks/rest/webhook, socket.io)
  Action server   http://localhost:${GIFTBOT_ACTIONS_PORT:-5055}
  Shopper demo    http://localhost:${GIFTBOT_WEB_PORT:-8080}   (store page with the chat widget; sign in as a demo customer)
  Agent console   http://localhost:${GIFTBOT_WEB_PORT:-8080}/agent   (demo agent: sam / harbor-lantern-42)
  Logs            var/log/

  Try it:
    curl -s localhost:5005/webhooks/rest/webhook -d '{"sender": "me", "message": "hi"}'
  Signed in as a demo customer (token from: .venv/bin/giftbot token ann@example.com):
    curl -s localhost:5005/webhooks/rest/webhook \\
      -d '{"sender": "ann-1", "message": "what is my gift card balance", "metadata": {"customer_token": "TOKEN"}}'

MSG
"$BIN/giftbot" wallet seed --demo
echo
# Rasa's channels: credentials.yml plus each messaging platform whose GIFTBOT_<PLATFORM>_...
# settings are set (bot/channels/registry.py); none calls its platform at start-up.
echo "  Messaging channels: $("$BIN/giftbot" channels credentials)"
echo "  Starting Rasa (about 30 seconds)..."
# Rasa's HTTP API (the agent console's way in) is enabled only with the generated key: callers
# send a short-lived token signed with it in the Authorization header (bot/web/rasa_api.py).
# Rasa listens on GIFTBOT_RASA_HOST (loopback by default) and lets the demo page's origin in.
# GIFTBOT_WIDGET_ORIGINS: the pages the widget runs on (default: the web app's), allowed
# credentials (engine.io long-polling's sticky cookie behind a balancer); no other origin.
read -r api_token rasa_host widget_origins < <("$BIN/python" -c 'from bot.settings import get_settings
s = get_settings(); print(s.rasa_api_token, s.rasa_host, *s.widget_origins)')
read -r -a widget_origins <<< "$widget_origins"
"$BIN/rasa" run --model models/giftbot.tar.gz --port "${GIFTBOT_RASA_PORT:-5005}" \
  --interface "$rasa_host" \
  --credentials var/credentials.yml --endpoints endpoints.yml --cors "${widget_origins[@]}" \
  --enable-api --jwt-secret "$api_token" --jwt-method HS256 --logging-config-file logging.yml \
  2>&1 | tee var/log/rasa.log | grep --line-buffered -E "Rasa server is up|ERROR|Error" || true
