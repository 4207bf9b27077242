# Two commands set up a fresh Debian machine: `make test` and `make demo`.
# Both install what they need (apt packages, .venv, pip install -e .) and are fast when already done.

SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
PIP   := $(VENV)/bin/pip
REXMON := $(VENV)/bin/rexmon

# What rexmon itself needs (and so `make demo`): the archive (rrdtool, rrdcached) and Munin's plugins.
APT_RUN  := librrd-dev rrdtool rrdcached pkg-config munin-plugins-core
# What the tests and benchmarks add: real peers started on loopback (PostgreSQL, ActiveMQ, headless
# Chromium), munin-node + munin-update for the Munin benchmark, wrk for the web load test, a real
# single-node Slurm 22.05 cluster (tests/fixtures/slurm.py), Prometheus scraping rexmon's /metrics
# (tests/fixtures/prometheus.py), systemd-analyze for etc/systemd/ (tests/ops) and Graphite's
# carbon-cache as the ingestion benchmark's peer (bench/carbon.py).
APT_TEST := munin munin-node postgresql activemq chromium chromium-driver wrk \
            slurmctld slurmd slurm-client slurmrestd slurm-wlm-jwt-plugin munge \
            prometheus systemd graphite-carbon

# $(call apt_install,PACKAGES): install the missing ones (apt-get update once per checkout, only if needed)
define apt_install
	@missing=$$(for p in $(1); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing: $$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  mkdir -p $(VENV); \
	  [ -f $(VENV)/.apt-updated ] || { $$SUDO apt-get update -qq && touch $(VENV)/.apt-updated; } && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
endef

.PHONY: all setup test-setup test demo bench soak lint clean vendor wheel
all: test

setup: $(VENV)/.installed
test-setup: setup $(VENV)/.apt-test $(VENV)/.installed-test

$(VENV)/.apt: Makefile
	$(call apt_install,$(APT_RUN))
	@# Debian's rrdcached service must not run on its own: rexmon and the tests start what they need
	@-systemctl disable --now rrdcached >/dev/null 2>&1 || true
	@mkdir -p $(VENV) && touch $@

$(VENV)/.apt-test: Makefile $(VENV)/.apt
	$(call apt_install,$(APT_TEST))
	@-systemctl disable --now activemq postgresql munin-node slurmctld slurmd slurmrestd munge prometheus >/dev/null 2>&1 || true
	@touch $@

$(VENV)/bin/python: | $(VENV)/.apt
	python3 -m venv $(VENV)
	$(PIP) install -q -U pip

$(VENV)/.installed: pyproject.toml $(VENV)/bin/python $(VENV)/.apt
	$(PIP) install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(PIP) install -q -e '.[test,postgres]'
	touch $@

# uPlot is vendored in web/static/vendor/ with its licence (so a wheel or sdist needs no npm);
# `make vendor` fetches the version web/package.json pins from npm and replaces the vendored copy.
vendor:
	@command -v npm >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
	cd web && npm install --no-audit --no-fund --loglevel=error
	cp web/node_modules/uplot/dist/uPlot.iife.min.js web/node_modules/uplot/dist/uPlot.min.css web/static/vendor/
	cp web/node_modules/uplot/LICENSE web/static/vendor/uPlot.LICENSE

# The wheel and the sdist in dist/. (tests/packaging builds its own in a temporary directory and installs
# the wheel into a clean virtualenv, so `make test` and CI check them like any test.)
wheel: $(VENV)/.installed-test
	$(PY) -m build -o dist .

# The style checks run first, so CI (.ci/run -> make test) fails on a lint or type error before any test.
LINT = $(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check . && $(VENV)/bin/mypy

test: test-setup
	$(LINT)
	$(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

demo: setup
	$(REXMON) demo $(DEMO_ARGS)

bench: test-setup
	$(PY) -m bench $(BENCH_ARGS)

# the soak test (10 min: rrdcached stopped and the database locked a minute each inside it), then the
# memory benchmark (a million slurper runs, about 10 min; figures in var/soak.json)
soak: test-setup
	REXMON_SOAK=1 $(PY) -m pytest -q -p no:cacheprovider -m slow tests/reliability
	$(PY) -m bench.bench_soak --json var/soak.json

lint: test-setup
	$(LINT)

clean:
	rm -rf var/ web/node_modules dist/
