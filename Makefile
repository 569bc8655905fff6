# teleconsult — the two set-up commands are `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
HOST   ?= 127.0.0.1
PORT   ?= 8080
export HOST PORT

# Debian packages the test suite drives for real: Chromium for e2e tests, Redis for fan-out
# tests, PostgreSQL for the second SQL engine, a CJK font so that screenshots of the zh-CN UI
# are legible; coturn for the TURN tests, nftables and iproute2 for the network namespaces they
# firewall, openssl for coturn's test certificate; haproxy in front of two signaling processes
# (tests/support/haproxy.py); esbuild to bundle the call pages' code (teleconsult/web_bundle.py).
# Installed by `make test` only when missing.

.PHONY: bundle test-under-load run test lint unit integration e2e bench bench-relay bench-login system-deps clean bench-training vendor-socketio vendor-echarts vendor-axe vendor-hlsjs compose-check bench-startup bench-network cluster

$(VENV)/.runtime: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.dev: $(VENV)/.runtime pyproject.toml
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

## run: start the server with embedded defaults (SQLite, local disk, in-process fan-out) and print demo links
run: $(VENV)/.runtime bundle
	$(PY) -m teleconsult demo
	$(PY) -m teleconsult serve

## cluster: a whole cluster on loopback until Ctrl-C (haproxy, 2 signaling, 2 media nodes, Redis, PostgreSQL, S3, coturn; docs/deployment.md)
CLUSTER_PORT ?= 8080
cluster: $(VENV)/.dev
	$(PY) scripts/cluster.py --port $(CLUSTER_PORT)

## bundle: the call pages' code as one file each (web_client/dist, by Debian's esbuild; installed if missing and possible)
bundle: $(VENV)/.runtime
	@command -v esbuild >/dev/null 2>&1 || { \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO="sudo -n"; \
	  echo "installing Debian package: esbuild"; \
	  $$SUDO apt-get install -y -qq esbuild >/dev/null 2>&1 || \
	  { $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq esbuild; } >/dev/null 2>&1 || \
	  echo "esbuild could not be installed: the call pages will load their modules one by one (slower start)"; }
	@if command -v esbuild >/dev/null 2>&1; then $(PY) -m teleconsult.web_bundle --if-stale; fi

## system-deps: install the Debian packages the tests need, only when missing
system-deps:
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v redis-server >/dev/null 2>&1 || missing="$$missing redis-server"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	[ -e /usr/share/fonts/truetype/wqy/wqy-zenhei.ttc ] || missing="$$missing fonts-wqy-zenhei"; \
	command -v turnserver >/dev/null 2>&1 || missing="$$missing coturn"; \
	command -v nft >/dev/null 2>&1 || [ -x /usr/sbin/nft ] || missing="$$missing nftables"; \
	command -v ip >/dev/null 2>&1 || [ -x /usr/sbin/ip ] || missing="$$missing iproute2"; \
	command -v openssl >/dev/null 2>&1 || missing="$$missing openssl"; \
	command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || missing="$$missing haproxy"; \
	command -v esbuild >/dev/null 2>&1 || missing="$$missing esbuild"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

## test: install everything the tests need, check lint and types, run the whole suite
test: system-deps $(VENV)/.dev lint bundle
	$(PY) -m pytest -ra --durations=25 -n 2 --no-loadscope-reorder

unit: $(VENV)/.dev
	$(PY) -m pytest -ra tests/unit

integration: $(VENV)/.dev
	$(PY) -m pytest -ra tests/integration

e2e: system-deps $(VENV)/.dev bundle
	$(PY) -m pytest -ra tests/e2e

## lint: ruff, mypy, and the layering contracts (import-linter, pyproject's [tool.importlinter])
lint: $(VENV)/.dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-logo

## bench: signaling benchmark, teleconsult beside a bare python-socketio relay (~2 min; --full: the 2000-client run)
bench: $(VENV)/.dev
	$(PY) bench/signaling.py

## bench-login: /healthz, a socket.io signal and a relayed video's forwarding latency, idle vs during 50 concurrent failed logins (~1 min)
bench-login: $(VENV)/.dev
	$(PY) bench/login.py

## test-under-load: the whole suite in a fresh clone with stress-ng --cpu 2 beside it, 3 runs (~50 min; needs stress-ng)
test-under-load:
	scripts/test-under-load.sh 3

## bench-relay: forwarding relay beside Janus (when installed) and the transcoding relay, video and video+Opus, latency, recording cost (about 10 minutes)
bench-relay: $(VENV)/.dev
	$(PY) bench/relay.py

## bench-startup: page-open → first remote video frame of both demo pages in real Chromium, 5 runs
bench-startup: system-deps $(VENV)/.dev
	$(PY) bench/startup.py

## bench-network: a consult on a hostile network (namespace, cap, loss, outages); needs root
bench-network: system-deps $(VENV)/.dev
	$(PY) bench/network.py

## vendor-socketio: refresh the vendored socket.io browser client at the pinned version
vendor-socketio:
	scripts/vendor-socketio.sh

## vendor-echarts: refresh the vendored Apache ECharts build (supervisor statistics charts) at the pinned version
vendor-echarts:
	scripts/vendor-echarts.sh

## bench-training: a lecturer's broadcast packaged and served to 1 000 simulated trainees (bench/training.py)
bench-training: $(VENV)/.dev
	$(PY) bench/training.py

## vendor-hlsjs: refresh the vendored hls.js (the trainees' broadcast player) at the pinned version (integrity-checked)
vendor-hlsjs:
	scripts/vendor-hlsjs.sh

## vendor-axe: refresh the vendored axe-core the e2e tests inject into pages (never served) at the pinned version
vendor-axe:
	scripts/vendor-axe.sh

## compose-check: validate docker-compose.yml (needs Debian's docker-compose; no engine needed)
compose-check:
	JWT_SECRET=check TURN_SECRET=check MEDIA_ADDRESS=192.0.2.1 S3_SECRET_KEY=check METRICS_TOKEN=check-check-check docker-compose -f docker-compose.yml config -q

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache test-artifacts
