# Two commands on a fresh machine: `make run` and `make test`. Everything else is installed from here.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test bench lint format clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/zhibu db init
	$(BIN)/zhibu demo
	# The scheduler runs beside the web service and stops with it.
	$(BIN)/zhibu scheduler & SCHEDULER=$$!; trap "kill $$SCHEDULER 2>/dev/null" EXIT INT TERM; $(BIN)/zhibu serve

test: install
	$(BIN)/pytest -q

bench: install
	$(BIN)/python -m bench.run

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) instance .pytest_cache
