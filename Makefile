# Two commands on a fresh machine: `make run` and `make test`. Everything else is installed from here.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 5000

.PHONY: install browsers run test fuzz bench soak lint format clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Debian's chromium and CJK fonts for the browser tests (Playwright drives /usr/bin/chromium).
browsers:
	@if [ -x /usr/bin/chromium ] && fc-list 2>/dev/null | grep -qi "noto sans cjk"; then \
		echo "chromium and fonts-noto-cjk are installed"; \
	else \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium fonts-noto-cjk; \
	fi

run: install
	$(BIN)/zhibu db init
	$(BIN)/zhibu demo
	# The scheduler runs beside the web service and stops with it.
	$(BIN)/zhibu scheduler & SCHEDULER=$$!; trap "kill $$SCHEDULER 2>/dev/null" EXIT INT TERM; $(BIN)/zhibu serve --port $(PORT)

test: install
	$(BIN)/pytest -q

# schemathesis with every check against /api/v1 on a fresh demo company: SQLite, and PostgreSQL when
# ZHIBU_TEST_POSTGRES_URL names one. Bounded: a fixed seed and FUZZ_EXAMPLES cases per operation.
FUZZ_EXAMPLES ?= 100
fuzz: install
	$(BIN)/python -m tools.fuzz_api --examples $(FUZZ_EXAMPLES)
	@if [ -n "$$ZHIBU_TEST_POSTGRES_URL" ]; then \
		$(BIN)/python -m tools.fuzz_api --examples $(FUZZ_EXAMPLES) --database-url "$$ZHIBU_TEST_POSTGRES_URL"; \
	fi

# The load-and-kill test for longer (CI runs it for 40 s inside `make test`): PostgreSQL is required.
SOAK_SECONDS ?= 600
soak: install
	ZHIBU_TEST_POSTGRES_URL="$${ZHIBU_TEST_POSTGRES_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test}" \
		ZHIBU_SOAK_SECONDS=$(SOAK_SECONDS) $(BIN)/pytest -q -s tests/reliability

bench: install
	$(BIN)/python -m bench.run

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) instance .pytest_cache
