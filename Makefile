# Two commands: `make run` and `make test`. Every set-up step below is idempotent and
# re-runs only when its inputs change, so a second run takes seconds.
SHELL := /bin/bash
export TF_CPP_MIN_LOG_LEVEL := 3
export SQLALCHEMY_SILENCE_UBER_WARNING := 1
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
WALLET := var/.wallet-ready

.PHONY: run run-scaled test setup train validate lint typecheck pytest evaluate bench audit lock clean

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

# The assistant, its scaled topology and a plain `rasa init` bot under the same load, side by
# side; writes docs/performance.md (README: Performance). Takes about 15 minutes.
bench: setup train
	@scripts/setup_web.sh --no-browser
	@scripts/install_haproxy.sh --optional
	$(BIN)/python -m scripts.bench

# Regenerate requirements.lock after changing the dependencies in pyproject.toml (and the
# audit tool's lock, requirements-audit.lock, from requirements-audit.in).
lock: $(INSTALLED)
	$(BIN)/pip-compile --extra dev --no-emit-index-url --no-emit-find-links --strip-extras \
		--allow-unsafe -q -o requirements.lock pyproject.toml
	$(BIN)/pip-compile --no-emit-index-url --no-emit-find-links --strip-extras \
		--allow-unsafe -q -o requirements-audit.lock requirements-audit.in

# Known advisories of the locked stack (pip-audit, in a virtualenv of its own: it needs a newer
# `packaging` than Rasa 3.6 allows). Says so, and exits 0, when no advisory database answers;
# fails on an advisory SECURITY.md does not account for.
AUDIT_VENV := .venv-audit
audit: $(INSTALLED)
	@if [[ ! -f $(AUDIT_VENV)/.installed || requirements-audit.lock -nt $(AUDIT_VENV)/.installed ]]; then \
		$(BIN)/python -m venv $(AUDIT_VENV) \
		&& $(AUDIT_VENV)/bin/pip install -q -r requirements-audit.lock \
		&& touch $(AUDIT_VENV)/.installed \
		|| { echo "make audit: NO ADVISORY CHECK WAS MADE: pip-audit could not be installed (is a package index reachable?)"; exit 0; }; \
	fi; \
	if [[ -f $(AUDIT_VENV)/.installed ]]; then $(BIN)/python scripts/audit.py $(AUDIT_VENV)/bin/pip-audit; fi

clean:
	rm -rf $(VENV) $(AUDIT_VENV) var node_modules .pytest_cache .mypy_cache .ruff_cache
