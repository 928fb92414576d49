# Everything a fresh machine with Python 3.11 and pip needs: `make demo`, `make test`.
SHELL := /bin/bash
# Use the system's certificate store, as pip does, so a machine behind a TLS proxy works.
export UV_SYSTEM_CERTS := 1
# Compile every installed module once at install: this machine runs Python with
# PYTHONDONTWRITEBYTECODE, so otherwise each process compiles what it imports (13 s of the
# imports of GX, scikit-learn and pyod, every run and every test worker).
export UV_COMPILE_BYTECODE := 1
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")

.PHONY: setup demo test lint format bench samples

setup:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 \
		|| python3 -m pip install --quiet uv
	$(UV) sync --frozen

demo: setup
	$(UV) run insiderwatch demo

test: setup
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run pytest --numprocesses 2 --dist loadfile --no-loadscope-reorder

lint: setup
	$(UV) run ruff check .

format: setup
	$(UV) run ruff format .

bench: setup
	$(UV) run python benchmarks/ingest.py
	$(UV) run python benchmarks/daily.py
	$(UV) run python benchmarks/floor.py
	$(UV) run python benchmarks/least.py
	$(UV) run python benchmarks/steps.py
	$(UV) run python benchmarks/growth.py
	$(UV) run python benchmarks/lookback.py
	$(UV) run python benchmarks/reports.py
	$(UV) run python benchmarks/cert_stream.py

# Rebuild the committed sample (fixed seed); commit the result.
samples: setup
	rm -rf sample_logs
	$(UV) run insiderwatch samples generate --out sample_logs --users 150 --days 90 --seed 20240401
