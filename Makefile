# Every target creates .venv and installs what it needs: a fresh clone needs nothing else.
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: setup demo test bench lint clean

setup:
	@scripts/venv.sh

demo: setup
	$(VENV)/bin/sluice demo

test: setup
	$(PY) -m pytest -q

bench: setup
	$(PY) bench/run.py

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .sluice
