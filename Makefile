# pysecc — the two commands a new user needs: `make demo` and `make test`.
# Everything a fresh Debian box (as root) lacks is installed by `make install`.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

# sim/ (EV simulator, test CSMS, fixtures) is not part of the installed wheel: run it from here
export PYTHONPATH := $(CURDIR)

.PHONY: install test demo bench lint interop clean system-deps install-ccu conformance

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(MAKE) --no-print-directory system-deps
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@# bytecode ahead of time (as a wheel install does): with PYTHONDONTWRITEBYTECODE set, every
	@# start would otherwise compile 3 MB of generated codec (seconds, +40 MB RSS; issue 13)
	$(PY) -m compileall -q -j 0 secc hal exi_schemas ocpp_bridge sim >/dev/null
	@touch $(STAMP)

# Debian packages the stack and its tests start themselves (never as system services).
system-deps:
	@missing=""; \
	command -v mosquitto >/dev/null 2>&1 || test -x /usr/sbin/mosquitto || missing="$$missing mosquitto"; \
	command -v ip >/dev/null 2>&1 || missing="$$missing iproute2"; \
	command -v systemd-analyze >/dev/null 2>&1 || missing="$$missing systemd"; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

# The charger's install (systemd/packaging/install_ccu.py says what goes where and why not a
# .deb): venv in /opt/pysecc, units, mosquitto drop-in, user pysecc, /etc/pysecc; enables
# nothing until `secc board check` passes. DESTDIR=/some/root installs into a scratch root.
BOARD ?= left
install-ccu:
	@command -v mosquitto_passwd >/dev/null 2>&1 && $(PYTHON) -c 'import ensurepip' 2>/dev/null || { \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		mosquitto python3-venv >/dev/null; }
	$(PYTHON) systemd/packaging/install_ccu.py --board $(BOARD) $(if $(DESTDIR),--destdir $(DESTDIR))

# TEST_ARGS: extra pytest arguments (CI passes --ignore=tests/conformance: `make conformance`
# runs that suite whole, once, with its table)
TEST_ARGS ?=
test: install
	$(PY) -m pytest -q -p no:cacheprovider $(TEST_ARGS)

# The ISO 15118-4/-5 style conformance suite (tests/conformance, docs/conformance.md) with its
# long-timer cases, printed as a table by area.
conformance: install
	$(PY) -m pytest -q -p no:cacheprovider tests/conformance --conformance-table \
		-m "conformance_long or not conformance_long"

demo: install
	$(PY) -m sim.demo

bench: install
	@for b in benchmarks/*_bench.py; do echo "== $$b"; $(PY) $$b || exit 1; done

# ruff, then the package boundaries of docs/architecture.md ([tool.importlinter] in pyproject.toml)
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --no-cache

clean:
	rm -rf $(VENV) build *.egg-info

# --- make interop: Josev's EVCC (PyPI iso15118) against our SECC daemon across a veth pair.
# Not part of `make test`: it downloads Josev into its own venv and needs Java (Josev's EXI
# codec is a jar). Pass options through INTEROP_ARGS, e.g. INTEROP_ARGS="--only iso2-dc-tls".
JOSEV_VENV   := interop/.venv-josev
JOSEV_PY     := $(JOSEV_VENV)/bin/python
JOSEV_STAMP  := $(JOSEV_VENV)/.installed
INTEROP_ARGS ?=

$(JOSEV_STAMP): interop/requirements-josev.txt
	@command -v java >/dev/null 2>&1 || { echo "installing a Java runtime for Josev"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq default-jre-headless >/dev/null; }
	@test -x $(JOSEV_PY) || $(PYTHON) -m venv $(JOSEV_VENV)
	$(JOSEV_PY) -m pip install -q -r interop/requirements-josev.txt
	@touch $(JOSEV_STAMP)

interop: install $(JOSEV_STAMP)
	$(PY) interop/josev_interop.py --josev-python $(JOSEV_PY) $(INTEROP_ARGS)
