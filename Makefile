# make run   - set up .venv and node_modules from nothing, then ./run-posters-cnn.sh
# make test  - the same set-up plus test tools, then the whole test suite
# Set-up steps are redone only when their inputs change: the first `make test` installs about 2.7 GB
# (minutes), later ones go straight to the tests (about 11 minutes on 2 cores).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: run test serve bench setup setup-dev clean

run: setup
	./run-posters-cnn.sh

test: setup-dev
	node --test tests/js/
	$(BIN)/python -m pytest

serve: web/vendor/d3.min.js web/vendor/arrow.min.js
	@echo "open http://127.0.0.1:8000/index.html?data.json (a map in web/NAME/: http://127.0.0.1:8000/NAME/index.html?data.json)"
	$(PYTHON) -m http.server 8000 --bind 127.0.0.1 --directory web

bench: setup-dev
	@test -d ../shared/data/impawards-bench -a -f ../shared/tools/fake_impawards_server.py || { \
	  echo "make bench: needs ../shared/ beside this checkout (data/impawards-bench and tools/fake_impawards_server.py), which a plain clone does not have; bench/bench_large_photos.py needs nothing: .venv/bin/python bench/bench_large_photos.py" >&2; exit 2; }
	bench/run_all.sh

setup: $(VENV)/.runtime web/vendor/d3.min.js web/vendor/arrow.min.js
setup-dev: setup $(VENV)/.dev

$(VENV)/.runtime: requirements.txt
	@echo "== set-up: a virtual environment in $(VENV) with requirements.txt (TensorFlow among them: about 2.7 GB; a few minutes the first time, nothing after)"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: requirements-dev.txt $(VENV)/.runtime
	@echo "== set-up: the test tools of requirements-dev.txt"
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	@echo "== set-up: d3 and apache-arrow from npm (package-lock.json)"
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

web/vendor/d3.min.js: node_modules/.installed
	mkdir -p web/vendor
	cp node_modules/d3/dist/d3.min.js $@

web/vendor/arrow.min.js: node_modules/.installed
	mkdir -p web/vendor
	cp node_modules/apache-arrow/Arrow.es2015.min.js $@

clean:
	rm -rf $(VENV) node_modules web/vendor
