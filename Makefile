# AlphaStream — the two commands in the README are `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test deps deps-dev warm browser postgres lint bench ingest clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.deps: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.deps-dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(VENV)/.deps $@

deps: $(VENV)/.deps
deps-dev: $(VENV)/.deps-dev

## warm: compile the numba kernels into their on-disk cache (seconds once; loads fast afterwards),
## so neither the first dashboard refresh nor the timing-sensitive tests pay for compilation
warm: deps
	$(BIN)/python -c "import analytics; from storage import bars; analytics.warm_up(); bars.warm_up()"

## run: install the runtime dependencies and serve the dashboard on http://localhost:8501
run: deps warm
	$(BIN)/streamlit run app.py

## browser: make sure a headless Chromium exists for the browser tests
browser:
	sh scripts/install_chromium.sh

## postgres: make sure the test PostgreSQL answers (start the Debian cluster, or install it)
postgres: deps-dev
	PYTHON=$(BIN)/python sh scripts/ensure_postgres.sh

lint: deps-dev
	$(BIN)/ruff check .

## test: install everything the tests need (incl. Chromium and PostgreSQL), lint, run the whole suite
test: deps-dev browser postgres warm
	$(BIN)/ruff check .
	@# pytest exits 5 when it collected nothing: that is a failure here, said plainly.
	@$(BIN)/python -m pytest $(PYTEST_ARGS) || { rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; fi; exit $$rc; }

bench: deps-dev
	$(BIN)/python -m benchmarks

ingest: deps
	$(BIN)/python -m ingest

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
