# Every target is idempotent: the virtual environment is created once and
# reinstalled only when a requirements file changes.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8501

.PHONY: run test test-fast test-slow test-browser check-fresh-clone lint format bench train evaluate clean

$(BIN)/python:
	@echo "==> creating $(VENV) with $(PYTHON)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.runtime-installed: requirements.txt | $(BIN)/python
	@echo "==> installing requirements.txt into $(VENV)"
	$(BIN)/pip install --quiet -r requirements.txt
	@touch $@

$(VENV)/.dev-installed: requirements.txt requirements-dev.txt $(VENV)/.runtime-installed
	@echo "==> installing requirements-dev.txt into $(VENV)"
	$(BIN)/pip install --quiet -r requirements-dev.txt
	@touch $@

run: $(VENV)/.runtime-installed
	@echo "==> starting the dashboard on http://localhost:$(PORT) (models from models/)"
	$(BIN)/streamlit run app.py --server.port $(PORT)

lint: $(VENV)/.dev-installed
	@echo "==> ruff check and format check, import-linter's layering contracts (pyproject.toml)"
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: $(VENV)/.dev-installed
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: lint
	@echo "==> pytest: unit, page and browser tests (slow full-training tests: make test-slow)"
	$(BIN)/python -m pytest -m "not slow"

test-fast: $(VENV)/.dev-installed
	$(BIN)/python -m pytest -m "not slow and not browser"

test-slow: $(VENV)/.dev-installed
	$(BIN)/python -m pytest -m slow

test-browser: $(VENV)/.dev-installed
	$(BIN)/python -m pytest -m browser

# A new user's machine: a fresh clone with no ../shared, empty caches, MNIST only over HTTP (from 127.0.0.1).
check-fresh-clone:
	bash scripts/check-fresh-clone.sh

bench: $(VENV)/.runtime-installed
	$(BIN)/python -m digitlab bench --reference --time-to-accuracy --load --robustness

# The shipped models: every family afresh, then the CNN fine-tuned on writing styles and blended with its start,
# then the ensemble's weights chosen again for that CNN (its extra networks kept).
train: $(VENV)/.runtime-installed
	$(BIN)/python -m digitlab train --model all
	$(BIN)/python -m digitlab train --model cnn --reuse --style-share 0.2 --keep-start 0.3
	$(BIN)/python -m digitlab train --model ensemble --reuse

evaluate: $(VENV)/.runtime-installed
	$(BIN)/python -m digitlab evaluate

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache test-artifacts
