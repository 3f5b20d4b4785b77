# Two commands for a newcomer: `make test` and `make demo`. Both set up what they need
# (Debian packages, a .venv) on a fresh Debian 12 machine as root; nothing by hand.

SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
# Debian's own interpreter: readable by the unprivileged test user (pyenv's lives in /root).
BASE_PYTHON ?= /usr/bin/python3

APT_PACKAGES := python3-venv python3-dev git curl dbus dbus-user-session libpam-systemd iproute2 openssl \
	systemd-container docker-registry apache2-utils skopeo umoci busybox-static \
	runc crun uidmap passt zstd libseccomp2 util-linux

.PHONY: test demo deps lint typecheck pytest apt clean

deps: apt $(VENV)/.installed

apt:
	@missing=$$(for p in $(APT_PACKAGES); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages: $$missing"; \
		[ "$$(id -u)" = 0 ] || { echo "run as root to install: $$missing" >&2; exit 1; }; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -q && apt-get install -y -q $$missing; \
	fi

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(BASE_PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	$(PY) -m pycontainers.runtime.launcher
	touch $@

lint: deps
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: deps
	$(VENV)/bin/mypy

pytest: deps
	$(PY) -m pytest $(PYTEST_ARGS)

test: lint typecheck pytest

# The whole loop in a throwaway systemd: build, push, pull, run, edit, repair, tear down.
demo: deps
	bash packaging/demo/demo.sh

clean:
	rm -rf $(VENV) build .build *.egg-info .mypy_cache .ruff_cache
