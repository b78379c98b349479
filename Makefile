# The README's two commands: `make run` and `make test`. Everything else is optional.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
N      ?= 10000
DATA   ?= data/trajectories

.PHONY: run test test-slow lint bench bench-data bench-extractors bench-train bench-jepa bench-saliency install clean

# Every extra the tests and targets use, at the tested versions of constraints.txt.
EXTRAS := dev,s3,dask,hdf5

# Reinstall only when pyproject.toml or constraints.txt changed since the last install
# (seconds otherwise).
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[$(EXTRAS)]' -c constraints.txt
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(PY) -m generator --n $(N) --out $(DATA) --resume

test: $(STAMP)
	$(PY) -m pytest

test-slow: $(STAMP)
	$(PY) -m pytest -m slow

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

bench: $(STAMP)
	$(PY) benchmarks/bench_generator.py

bench-data: $(STAMP)
	$(PY) benchmarks/bench_dataset.py

bench-extractors: $(STAMP)
	$(PY) benchmarks/bench_extractors.py

bench-train: $(STAMP)
	$(PY) benchmarks/bench_train.py

bench-jepa: $(STAMP)
	$(PY) benchmarks/bench_jepa.py

bench-saliency: $(STAMP)
	$(PY) benchmarks/bench_saliency.py

clean:
	rm -rf build *.egg-info .pytest_cache .ruff_cache
