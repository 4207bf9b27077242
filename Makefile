# Two commands set up a fresh Debian machine: `make test` and `make demo`.
# Both install what they need (apt packages, .venv, pip install -e .) and are fast when already done.

SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
PIP   := $(VENV)/bin/pip
REXMON := $(VENV)/bin/rexmon

# rrdtool/rrdcached: the archive; munin-*: real plugins for tests, munin (munin-update) for the Munin benchmark;
# postgresql, activemq, chromium: real peers the tests start on loopback; npm: the chart library.
APT_PKGS := librrd-dev rrdtool rrdcached pkg-config munin munin-node munin-plugins-core \
            postgresql activemq chromium chromium-driver wrk

.PHONY: all setup apt venv test demo bench soak lint clean
all: test

setup: $(VENV)/.installed web/static/vendor/.installed

apt: $(VENV)/.apt
$(VENV)/.apt: Makefile
	@missing=$$(for p in $(APT_PKGS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing: $$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
	@# the Debian services must not run on their own: tests and the demo start what they need
	@-systemctl disable --now rrdcached activemq postgresql munin-node >/dev/null 2>&1 || true
	@mkdir -p $(VENV) && touch $@

$(VENV)/bin/python: | $(VENV)/.apt
	python3 -m venv $(VENV)
	$(PIP) install -q -U pip

$(VENV)/.installed: pyproject.toml $(VENV)/bin/python $(VENV)/.apt
	$(PIP) install -q -e '.[test,postgres]'
	touch $@

web/static/vendor/.installed: web/package.json | $(VENV)/.apt
	@command -v npm >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
	cd web && npm install --no-audit --no-fund --loglevel=error
	mkdir -p web/static/vendor
	cp web/node_modules/uplot/dist/uPlot.iife.min.js web/node_modules/uplot/dist/uPlot.min.css web/static/vendor/
	touch $@

test: setup
	$(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

demo: setup
	$(REXMON) demo $(DEMO_ARGS)

bench: setup
	$(PY) -m bench $(BENCH_ARGS)

soak: setup
	REXMON_SOAK=1 $(PY) -m pytest -q -m slow tests/reliability

lint: setup
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check . && $(VENV)/bin/mypy

clean:
	rm -rf var/ web/static/vendor web/node_modules
