# One command sets everything up and runs the main job; one sets up and runs the tests.
#   make demo   - create .venv if missing, install the pinned requirements, run the demo loop
#   make test   - the same set-up, then the whole test suite (what CI runs)
PYTHON ?= python3
VENV   := .venv
VPY    := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup demo test bench pretrain pretrain-features simulate-benchmark mutation clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q -r requirements-dev.txt
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(VPY) demo.py

test: setup
	$(VPY) -m pytest

# The whole TROMPA-MER benchmark with its pinned headline values (~12 CPU-minutes; not in CI).
test-study: setup
	$(VPY) -m pytest -m study

bench: setup
	$(VPY) benchmarks/bench_features.py
	$(VPY) benchmarks/bench_opensmile.py
	$(VPY) benchmarks/bench_pool.py
	$(VPY) benchmarks/bench_members.py
	$(VPY) benchmarks/bench_loop.py
	$(VPY) benchmarks/bench_cnn.py
	$(VPY) benchmarks/bench_simulate.py

# Rebuild the default committee from ../shared/data/4q (the command in its model card): xgb members
# on the window features beside musicnn members that read each song's audio (README "The default committee").
pretrain: setup
	$(VPY) deam_classifier.py --dataset 4q -m xgb,musicnn --window-stride 2 -o models/pretrained

# The feature-only committee (sgd + xgb; the default until issue 20; never reads audio).
pretrain-features: setup
	$(VPY) deam_classifier.py --dataset 4q -m sgd,xgb --window-stride 2 -o models/pretrained-features

# The offline TROMPA-MER benchmark (docs/experiments.md).
simulate-benchmark: setup
	$(VPY) simulate_personalization.py --preset trompa-benchmark -o results/trompa -j 2

# Mutation testing of the core modules (mutmut, one process; about 25 min; docs/testing.md).
# Not part of `make test` or CI. MUTATION_ARGS="consensus statistics" runs some targets.
mutation: setup
	$(VPY) tools/mutation.py $(MUTATION_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .cache
