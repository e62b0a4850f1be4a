# Two commands: `make run` and `make test`. Every set-up step below is idempotent and
# re-runs only when its inputs change, so a second run takes seconds.
SHELL := /bin/bash
export TF_CPP_MIN_LOG_LEVEL := 3
export SQLALCHEMY_SILENCE_UBER_WARNING := 1
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
WALLET := var/.wallet-ready

.PHONY: run run-scaled test setup train validate lint typecheck pytest evaluate lock clean

run: setup train
	@scripts/setup_web.sh --no-browser
	@scripts/serve.sh

# The production topology on this machine: HAProxy, N Rasa and M action servers, PostgreSQL,
# Redis and RabbitMQ (README: Scaling out). HAProxy is installed when missing.
run-scaled: setup train
	@scripts/setup_web.sh --no-browser
	@scripts/serve_scaled.sh

test: setup lint typecheck validate train pytest

setup: $(INSTALLED) $(WALLET)

# Builds the spaCy pipeline and trains the Rasa model only when their inputs changed.
train: $(INSTALLED)
	@$(BIN)/python scripts/train_if_changed.py

validate: setup
	@umask 077; $(BIN)/rasa data validate --fail-on-warnings > var/log/validate.log 2>&1 \
		|| { tail -40 var/log/validate.log; exit 1; }
	@echo "rasa data validate: clean"

$(INSTALLED): pyproject.toml requirements.lock scripts/bootstrap.sh
	@scripts/bootstrap.sh
	@touch $@

# var/ is for this user alone: 0700 folders, 0600 files (bot/private_files.py does the same).
$(WALLET): $(INSTALLED) $(wildcard bot/wallet/migrations/versions/*.py)
	@umask 077; mkdir -p var/log
	@$(BIN)/giftbot wallet init
	@$(BIN)/giftbot wallet seed --demo > /dev/null
	@touch $@

lint: $(INSTALLED)
	$(BIN)/ruff check bot actions tests scripts
	$(BIN)/ruff format --check bot actions tests scripts

typecheck: $(INSTALLED)
	$(BIN)/mypy

# The browser tests need the npm packages and Debian's chromium (setup_web.sh installs them).
pytest: $(INSTALLED)
	@scripts/setup_web.sh
	@scripts/install_haproxy.sh --optional
	$(BIN)/pytest

# Held-out NLU results and 5-fold cross-validation, written to docs/evaluation.md.
evaluate: setup train
	@$(BIN)/python scripts/evaluate.py

# Regenerate requirements.lock after changing the dependencies in pyproject.toml.
lock: $(INSTALLED)
	$(BIN)/pip-compile --extra dev --no-emit-index-url --no-emit-find-links --strip-extras \
		--allow-unsafe -q -o requirements.lock pyproject.toml

clean:
	rm -rf $(VENV) var node_modules .pytest_cache .mypy_cache .ruff_cache
