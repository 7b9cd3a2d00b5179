# Two commands for a newcomer: `make demo` and `make test`. Everything else is optional.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: venv demo engine-demo test test-fast lint typecheck pytest cluster-bin promtool browser bench chaos crd clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# The operator and an in-process Kubernetes API emulator, running the examples.
demo: $(STAMP)
	$(BIN)/kubesteps demo examples

# The steps engine alone, as a library, with the SQLite keeper.
engine-demo: $(STAMP)
	$(BIN)/python examples/engine_demo.py

# Regenerate the CRD from the spec model (and the chart's copy).
crd: $(STAMP)
	$(BIN)/kubesteps crd > crds/pipelines.kubesteps.dev.yaml
	$(BIN)/kubesteps crd --kind PipelineTemplate > crds/pipelinetemplates.kubesteps.dev.yaml
	cp crds/pipelines.kubesteps.dev.yaml crds/pipelinetemplates.kubesteps.dev.yaml \
		charts/kubesteps/crds/

lint: $(STAMP)
	$(BIN)/ruff check operator tests bench examples
	$(BIN)/ruff format --check operator tests bench examples
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy operator/kubesteps

# Both cores (XDIST=N to change), the tests of the real control plane grouped onto one worker
# (they share one control plane per session), branch coverage against the floor in
# pyproject.toml. The tests also need a real control plane's binaries, promtool and a
# headless browser; the targets below get them (once per machine) or fail saying how to.
XDIST ?= auto
pytest: $(STAMP) cluster-bin promtool browser
	$(BIN)/pytest -n $(XDIST) --dist loadgroup --cov --cov-report=term

# etcd, kube-apiserver, kube-controller-manager, kubectl and helm for tests/cluster: built
# from Go modules into .cache/ (a cold build takes 16 to 18 minutes and needs Go), or taken
# from KUBEBUILDER_ASSETS / TEST_ASSET_*. Progress on stderr; the last line is their folder.
cluster-bin:
	@tests/cluster/build-binaries.sh

# promtool (Debian's prometheus package) for the alert-rule tests: installed when missing
# (as root), or the command to install it is printed.
promtool:
	@tests/tools/ensure-promtool.sh

# Chromium (Debian's chromium package) and playwright-core (npm, no browser download) for the
# browser tests of `kubesteps ui` (tests/ui): installed when missing (chromium as root).
browser:
	@tests/tools/ensure-browser.sh >/dev/null

test: lint typecheck pytest

# The inner loop: everything that starts no process (no operator, kubectl, helm, control plane),
# on both cores, no coverage. Run `make test` before you push.
test-fast: $(STAMP)
	$(BIN)/pytest -n $(XDIST) -m "not slow and not cluster" -q

bench: $(STAMP)
	$(BIN)/python -m bench

# The chaos suite's long form (make test runs a bounded one): one run with one operator and
# one with two under leader election, 60 Pipelines each. SEED=N reproduces a run.
SEED ?=
DURATION ?= 60
chaos: $(STAMP)
	$(BIN)/python -m tests.chaos $(if $(SEED),--seed $(SEED)) --duration $(DURATION)

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
