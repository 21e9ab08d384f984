# Kaon: `make run` serves a demo workspace on http://127.0.0.1:8080; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA_DIR ?= kaon-data
PORT ?= 8080

.PHONY: run test lint typecheck unit system-deps bench faults clean

$(BIN)/kaon: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

# System packages the suite needs (Debian): chromium and nodejs/npm for the web SDK tests; installed only when missing.
system-deps:
	sh scripts/install-system-deps.sh

# The demo sends nowhere local: outputs reach public addresses only unless listed here (docs/security.md).
KAON_OUTBOUND_ALLOW ?=

run: $(BIN)/kaon
	$(BIN)/kaon init --data-dir $(DATA_DIR) --workspace demo
	KAON_OUTBOUND_ALLOW='$(KAON_OUTBOUND_ALLOW)' $(BIN)/kaon serve --data-dir $(DATA_DIR) --port $(PORT)

lint: $(BIN)/kaon
	$(BIN)/ruff check src tests bench

typecheck: $(BIN)/kaon
	$(BIN)/mypy

unit: $(BIN)/kaon
	$(BIN)/pytest -q

test: $(BIN)/kaon system-deps lint typecheck unit

bench: $(BIN)/kaon
	$(BIN)/python bench/ingest.py

# The fault campaign (kill -9 cycles under load, an outage with a kill): exits 1 on any acknowledged event lost.
faults: $(BIN)/kaon
	$(BIN)/python bench/faults.py --check

clean:
	rm -rf $(VENV) $(DATA_DIR) build *.egg-info
