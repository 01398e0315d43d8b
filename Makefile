# Two entry points, both from a fresh clone:
#   make demo   set up, build the reference models, measure them on this machine, write the report
#   make test   set up (Python and Debian packages) and run the whole test suite
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml requirements.lock | cksum | cut -d' ' -f1)
# The exact versions the suite was last run with (requirements.lock), so a fresh clone installs what CI tested.
LOCK := -c requirements.lock
# Python may write its bytecode caches (__pycache__/, ignored by git), whatever the calling shell says: with
# PYTHONDONTWRITEBYTECODE set, every process the tests start compiled the harness again and pytest rewrote every
# test module again in each worker (collecting the suite took 13.6 s instead of 6.6 s).
export PYTHONDONTWRITEBYTECODE :=

.PHONY: demo test quick slowest docs setup system-deps bench mutants clean

# --no-compile: pip compiled every installed module to bytecode up front (torch's thousands; a minute of the
# setup); Python compiles what is imported on first use and keeps it (see PYTHONDONTWRITEBYTECODE above).
$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# The CPU wheel of torch first, exactly pinned, so no dependency can pull a CUDA build.
	$(BIN)/python -m pip install -q --no-compile $(LOCK) torch==2.13.0
	$(BIN)/python -m pip install -q --no-compile $(LOCK) -e '.[all]'
	# openai-whisper without its triton requirement (GPU-only); see pyproject.toml.
	$(BIN)/python -m pip install -q --no-compile $(LOCK) --no-deps openai-whisper==20250625
	# Apache Otava (harness site's change points) without its pins and service clients; see pyproject.toml.
	$(BIN)/python -m pip install -q --no-compile $(LOCK) --no-deps apache-otava==0.8.0
	rm -f $(VENV)/.installed-* && touch $(STAMP)

setup: $(STAMP)

system-deps:
	bash scripts/install-system-deps.sh

demo: $(STAMP)
	$(BIN)/harness zoo build
	$(BIN)/harness run plans/host-demo.yaml
	$(BIN)/harness report latest -o reports/latest

# Two workers: on a 2-core machine the suite takes two thirds of the time it takes in one process, and
# tests that share a costly fixture stay on one worker (tests/conftest.py).
test: $(STAMP) system-deps
	$(BIN)/python -m pytest -n 2 --dist loadgroup

# The inner loop while editing: everything but the tests marked slow (seconds of real work each), on every core.
quick: $(STAMP) system-deps
	$(BIN)/python -m pytest -m "not slow" -n auto -q

# The ten slowest tests of the whole suite, setup and teardown included (benchmarks/slowest_tests.py).
slowest: $(STAMP) system-deps
	$(BIN)/python -m pytest -n 2 --dist loadgroup --durations=0 -p no:cacheprovider > reports/slowest-tests.log || true
	$(BIN)/python benchmarks/slowest_tests.py reports/slowest-tests.log

# The user documentation (docs/, mkdocs.yml) as a static site in site/; --strict fails on a broken link.
docs: $(STAMP)
	$(BIN)/mkdocs build --strict -d site

# Mutation testing ([tool.mutmut] in pyproject.toml says which modules and which tests); not in CI: tens of
# minutes.  MUTANTS narrows it to mutant names, e.g. make mutants MUTANTS='harness.report.verdict*'.
# `$(BIN)/mutmut results` lists the survivors, `$(BIN)/mutmut show NAME` shows one.
mutants: $(STAMP)
	$(BIN)/mutmut run --max-children 2 $(MUTANTS)
	$(BIN)/mutmut results

bench: $(STAMP) system-deps
	$(BIN)/python benchmarks/overhead.py
	$(BIN)/python benchmarks/push_throughput.py
	$(BIN)/python benchmarks/sampler_cost.py
	$(BIN)/python benchmarks/nightly_report.py

clean:
	rm -rf $(VENV) builds reports/latest site
