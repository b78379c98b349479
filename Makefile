# The README's two commands: `make run` and `make test`. Everything else is optional.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
N      ?= 10000
DATA   ?= data/trajectories

.PHONY: run test test-slow lint bench bench-data bench-extractors bench-train bench-jepa bench-saliency install clean mutate

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

# One test process a core (pytest-xdist); `pytest FILE` alone runs in this process.
test: $(STAMP)
	$(PY) -m pytest -n auto --dist worksteal

test-slow: $(STAMP)
	$(PY) -m pytest -n auto --dist worksteal -m slow

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(VENV)/bin/lint-imports

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

# Mutation testing of the format's modules (mutmut; not part of `make test`). A stride sample:
# every mutant whose number ends in MUTANTS' pattern (7: about 40 per module), each run against
# the tests of [tool.mutmut] that reach its function. MUTANTS='*' runs them all (hours).
MUTANTS ?= *7
MUTATE_MODULES := trajkit.files trajkit.lock generator.dataformat.layout generator.dataformat.writer \
  generator.dataformat.dataset generator.dataformat.sources generator.dataformat.checks \
  generator.dataformat.validate generator.dataformat.validate_shards generator.pipeline.heal \
  trajkit.s3sync.store trajkit.s3sync.rules trajkit.s3sync.verify trajkit.s3sync.upload \
  trajkit.s3sync.staging trajkit.s3sync.download trajkit.s3sync.command generator.dataformat.remote
mutate: $(STAMP)
	rm -rf mutants
	-$(PY) -m mutmut run $(foreach m,$(MUTATE_MODULES),"$(m).$(MUTANTS)")
	$(PY) -m mutmut results --all true | awk -F': ' '$$2 != "not checked" { \
	  m = $$1; gsub(/^ +/, "", m); sub(/\.[^.]*$$/, "", m); t[m]++; \
	  if ($$2 == "killed" || $$2 == "timeout") k[m]++ } \
	  END { for (m in t) printf "%-32s %3d/%3d killed (%.0f%%)\n", m, k[m], t[m], 100 * k[m] / t[m] }'

clean:
	rm -rf build *.egg-info .pytest_cache .ruff_cache
