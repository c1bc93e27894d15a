# The ledger's commands. `make help` lists them; `make run` and `make test` set up what they need.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SLITHER_VENV := .venv-slither
FOUNDRY := node_modules/@foundry-rs
FORGE := $(FOUNDRY)/forge-linux-amd64/bin/forge
# Debian packages the project needs on a new machine (installed by `make setup` when run as root).
APT_PACKAGES := bubblewrap libseccomp2 chromium chromium-driver
# Slither pins web3 7, the project uses web3 8: it lives in a venv of its own.
SLITHER_VERSION := 0.11.6

.PHONY: help setup apt test test-contracts test-python lint fmt compile bench-core bench-merkle bench-vault bench-compute bench-jobs bench-settlement bench-api bench-gas bench run demo clean

help: ## List the commands
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  make %-15s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

setup: $(VENV)/.installed node_modules/.installed apt ## Install Python, Node and Debian dependencies (idempotent, offline after)

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(SLITHER_VENV)/.installed:
	test -x $(SLITHER_VENV)/bin/python || $(PYTHON) -m venv $(SLITHER_VENV)
	$(SLITHER_VENV)/bin/pip install --quiet "slither-analyzer==$(SLITHER_VERSION)"
	touch $@

apt:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else echo "missing Debian packages:$$missing (run 'sudo make setup')"; exit 1; fi; \
	fi

test: setup test-contracts test-python ## Run every test: forge (unit, fuzz, invariant) and pytest

test-contracts: node_modules/.installed ## Forge tests only (FOUNDRY_PROFILE=ci for 10,000 fuzz runs)
	$(FORGE) test

test-python: setup ## Pytest only (unit and integration, against a real anvil)
	$(PY) -m pytest

lint: setup $(SLITHER_VENV)/.installed ## ruff, ruff format --check, mypy --strict, forge fmt --check, Slither
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(FORGE) fmt --check contracts benchmarks/gas
	PATH="$(CURDIR)/$(FOUNDRY)/forge-linux-amd64/bin:$$PATH" $(SLITHER_VENV)/bin/slither . --config-file slither.config.json --fail-low

fmt: setup ## Format Python and Solidity
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .
	$(FORGE) fmt contracts benchmarks/gas

compile: setup ## Compile contracts into ledger/artifacts (commit the result)
	$(PY) scripts/compile

bench-core: setup ## Core benchmarks (indexer backfill; grant check index vs eth_call) into benchmarks/results/
	$(PY) benchmarks/bench_core_indexer.py
	$(PY) benchmarks/bench_core_grants.py

bench-merkle: setup ## StandardMerkleTree build + all proofs, 100k and 1M leaves, into benchmarks/results/
	$(PY) benchmarks/bench_merkle.py

bench-vault: setup ## Vault ingest of 1,000,000 rows x 20 columns vs pandas read_csv+to_parquet, into benchmarks/results/vault.json
	$(PY) benchmarks/bench_vault.py

bench-compute: setup ## Sandbox overhead, DP mean, secure sum and logistic regression vs baselines, into benchmarks/results/compute.json
	$(PY) benchmarks/bench_compute_sandbox.py
	$(PY) benchmarks/bench_compute_dp.py
	$(PY) benchmarks/bench_compute_mpc.py
	$(PY) benchmarks/merge_results.py compute compute_sandbox compute_dp compute_mpc

bench-jobs: setup ## End-to-end jobs (DP mean, 100,000 rows), per-job and batched, into benchmarks/results/jobs.json
	$(PY) benchmarks/bench_jobs.py

bench-settlement: setup ## Settlement tree+proofs (10k/100k/1M), epoch and claim gas vs push payouts, into benchmarks/results/settlement.json
	$(PY) benchmarks/bench_settlement.py

bench-api: setup ## API under load: 50 clients x 60 s mixed reads against `ledger serve`, into benchmarks/results/api.json
	$(PY) benchmarks/bench_api.py

bench-gas: setup ## Gas per operation into benchmarks/results/gas.json, and .gas-snapshot
	$(PY) scripts/bench_gas.py
	FOUNDRY_TEST=benchmarks/gas $(FORGE) snapshot --snap .gas-snapshot

bench: bench-gas bench-core bench-merkle bench-vault bench-compute bench-jobs bench-settlement bench-api ## Run every benchmark, then regenerate the table in benchmarks/README.md
	$(PY) benchmarks/table.py

run: setup ## Run the product on embedded defaults: chain, contracts, indexer, API and console at http://127.0.0.1:8000
	$(VENV)/bin/ledger info
	$(VENV)/bin/ledger chain up
	$(VENV)/bin/ledger deploy
	@echo "Chain and contracts are up. Serving the API and the web console at http://127.0.0.1:8000"
	@echo "(the indexer follows the chain in the background; Ctrl-C stops the server, the chain keeps"
	@echo "running: stop it with $(VENV)/bin/ledger chain down; try $(VENV)/bin/ledger demo for the story)."
	$(VENV)/bin/ledger serve --host 127.0.0.1 --port 8000

demo: setup ## Play the whole story (ingest, register, grant, pay, compute, verify, settle, claim) on a chain of its own
	$(VENV)/bin/ledger demo

clean: ## Remove build outputs (keeps .venv and node_modules)
	rm -rf out cache crytic-export .pytest_cache .mypy_cache .ruff_cache
