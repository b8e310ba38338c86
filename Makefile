# The book's commands. Each one creates or reuses .venv from requirements.txt by itself.
#   make lab      open the chapters in JupyterLab (the .py files open as notebooks)
#   make test     unit tests, lint, pair sync, data checksums, then every chapter under strict nbval
#                 (in a perturbed numeric environment: see PERTURBED_ENV)
#   make sweep    every chapter for seeds 0-9 (SEEDS=...), with the margin of every assert
#   make ledger   site/claims_ledger.json from the sweep (the website's page "How sure is each claim?")
#   make outputs  re-execute every chapter on the CPU and store its outputs in the .ipynb
#   make test-gpu on a machine with an NVIDIA GPU: every chapter lax on the GPU, with its time and device
#   make data     rebuild data/ byte for byte from the registry packages (the only step that downloads)
#   make html     the website of the book in build/site/_build/html (jupyter-book, stored outputs, no CDN)
#   make student  the student edition in build/student (+ .zip): answers stubbed, checks kept, no solution
#   make assignments  an nbgrader course from the chapters in build/course

# The newest Python on PATH that TensorFlow 2.21 has wheels for (3.11, 3.12 or 3.13), or PYTHON=...
PYTHON_CHECK := import sys; sys.exit(not (3, 11) <= sys.version_info[:2] <= (3, 13))
PYTHON ?= $(shell for name in python3.13 python3.12 python3.11 python3; do \
	path=$$(command -v $$name) && "$$path" -c '$(PYTHON_CHECK)' 2>/dev/null && { echo "$$path"; break; }; done)
NO_PYTHON := Python 3.11, 3.12 or 3.13 is needed (TensorFlow 2.21 has wheels for those; none for Intel Macs). \
	Put python3.13, python3.12 or python3.11 on PATH, or run e.g. make test PYTHON=/path/to/python3.12
REQUIRE_PYTHON = @test -n "$(PYTHON)" && "$(PYTHON)" -c '$(PYTHON_CHECK)' 2>/dev/null || { echo "$(NO_PYTHON)" >&2; exit 1; }
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
CHAPTERS ?= $(sort $(wildcard chapters/[0-9][0-9]_*.py))

# Deterministic, quiet execution on the CPU. The stored outputs are made with two intra-op threads
# (OUTPUTS_ENV, one chapter at a time); the chapters are tested in another numeric environment
# (PERTURBED_ENV): oneDNN capped at AVX (other kernels than AVX2 or AVX-512 machines pick) and one
# thread (other blocking in convolutions), two chapters at a time. A stored output that depends on the
# machine then fails here, before it fails for a reader. tests/test_perturbation.py checks that each
# of the two really changes results on the machine at hand.
CPU_ENV := PYTHONHASHSEED=0 CUDA_VISIBLE_DEVICES= TF_CPP_MIN_LOG_LEVEL=2 TF_NUM_INTEROP_THREADS=1
OUTPUTS_ENV := TF_NUM_INTRAOP_THREADS=2
PERTURBED_ENV := ONEDNN_MAX_CPU_ISA=AVX TF_NUM_INTRAOP_THREADS=1
TEST_ENV := $(CPU_ENV) $(PERTURBED_ENV)
NBVAL := -p no:python -p tests.nbval_plugin --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg

SITE_VENV := .venv-site
SITE_INSTALLED := $(SITE_VENV)/.installed
NBGRADER_VENV := .venv-nbgrader
NBGRADER_INSTALLED := $(NBGRADER_VENV)/.installed
MATHJAX := build/cache/mathjax-3.2.2.tgz

.PHONY: which-python lab test test-unit test-plain test-lab test-chapters test-site test-student test-seed test-gpu test-xla sweep ledger check-wheels test-versions outputs data lint clean \
	html student assignments grade chromium readme

$(INSTALLED): requirements.txt
	$(REQUIRE_PYTHON)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(INSTALLED)

# JupyterLab for readers: it serves chapters/ (where jupytext.toml pairs each .py with its .ipynb, so
# either file opens with the stored outputs), opens chapter 1, opens .py files as notebooks and never
# asks about news or updates. tests/lab starts the server with exactly these options.
LAB_OPTIONS := --notebook-dir=chapters --LabApp.default_url=/lab/tree/01_feedforward_vs_rnn.py
LAB_SETTINGS := $(VENV)/share/jupyter/lab/settings/overrides.json
$(LAB_SETTINGS): $(INSTALLED) Makefile
	mkdir -p $(dir $(LAB_SETTINGS))
	echo '{"@jupyterlab/docmanager-extension:plugin": {"defaultViewers": {"python": "Jupytext Notebook"}},' \
		'"@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": false}}' \
		> $(LAB_SETTINGS)

# Extra options go in LAB_ARGS, e.g. make lab LAB_ARGS="--no-browser --port=8890".
lab: $(LAB_SETTINGS)
	$(VENV)/bin/jupyter lab $(LAB_OPTIONS) $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS)

test: test-unit test-plain test-lab test-chapters test-site test-student

# The interpreter the venvs are made with (tests/test_makefile_python.py checks the choice).
which-python:
	$(REQUIRE_PYTHON)
	@echo "$(PYTHON)"

test-unit: $(INSTALLED) lint
	$(CPU_ENV) TF_NUM_INTRAOP_THREADS=1 MPLBACKEND=Agg $(PY) -m pytest -q tests

# The README's route without make, in a fresh copy and a fresh venv (tests/plain/test_plain_pip.py).
test-plain: $(INSTALLED)
	$(PY) -m pytest -q tests/plain

test-chapters: $(INSTALLED)
	$(TEST_ENV) $(PY) -m pytest $(NBVAL) --nbval -n 2 --dist loadscope -q chapters

# Another seed (BOOK_SEED=7 make test-seed): every assert must hold; outputs are not compared,
# since data samples and training results depend on the seed.
test-seed: $(INSTALLED)
	@test -n "$$BOOK_SEED" || { echo "set BOOK_SEED, e.g. BOOK_SEED=7 make test-seed"; exit 1; }
	$(TEST_ENV) $(PY) -m pytest $(NBVAL) --nbval-lax -n 2 --dist loadscope -q chapters

# The seed sweep: every chapter for each seed in SEEDS, in the perturbed environment, every assert's
# margin recorded (tests/assert_margins.py); the table of the tightest asserts goes to $(SWEEP_OUT)/summary.md.
# One changed chapter: make sweep CHAPTERS=chapters/06_translation.py SWEEP_OUT=build/sweep-06
SEEDS ?= 0-9
SWEEP_OUT ?= build/sweep
sweep: $(INSTALLED)
	$(PY) -m tests.sweep --seeds $(SEEDS) --out $(SWEEP_OUT) $(CHAPTERS)

# The claims ledger (site/claims_ledger.json, committed): every assert with its worst case over the sweep.
# SWEEPS names the sweep directories (e.g. SWEEPS=build/sweep-07); a chapter in none of them keeps its
# stored entry while its asserts are unchanged.
SWEEPS ?= $(SWEEP_OUT)
ledger: $(INSTALLED)
	$(PY) -m tests.ledger $(SWEEPS)

# Version drift: every chapter lax with the previous TensorFlow and an older Keras 3, then with the
# newest releases on PyPI, each in its own venv under .venv-versions (tests/versions.py; about as long
# as make test-chapters per set, not part of make test).
test-versions: $(INSTALLED)
	$(PY) -m tests.versions $(VERSION_SETS)

# Whether every pinned package has a binary wheel for Linux, macOS (Apple silicon) and Windows with
# Python 3.11-3.13: pip's dry run per platform, nothing installed (needs the package index).
check-wheels: $(INSTALLED)
	$(PY) -m tests.wheels

# On a machine with an NVIDIA GPU (Linux, or Colab: see the README's GPU section): TensorFlow's CUDA
# libraries added to .venv, the GPU visible (make test hides it), memory growth on so that two chapters
# share it, two chapters at a time, lax (asserts only: the numbers differ from the stored CPU outputs).
# The summary gives each chapter's time and the device line its setup cell printed.
GPU_INSTALLED := $(VENV)/.installed-gpu
$(GPU_INSTALLED): $(INSTALLED) requirements-gpu.txt
	$(PY) -m pip install --quiet -r requirements-gpu.txt
	touch $(GPU_INSTALLED)

GPU_ENV := PYTHONHASHSEED=0 TF_CPP_MIN_LOG_LEVEL=2 TF_FORCE_GPU_ALLOW_GROWTH=true MPLBACKEND=Agg
test-gpu: $(GPU_INSTALLED)
	@$(GPU_ENV) $(PY) -c 'import tensorflow as tf, sys; gpus = tf.config.list_physical_devices("GPU"); \
		print("GPUs:", [g.name for g in gpus]); \
		sys.exit(0 if gpus else "no GPU visible to TensorFlow: make test-gpu needs an NVIDIA GPU and its driver")'
	$(GPU_ENV) $(PY) -m pytest $(NBVAL) --nbval-lax -n 2 --dist loadscope -q chapters

# Without a GPU: every chapter lax, with Keras compiling models with XLA wherever it would on a GPU
# (tests/xla_as_on_gpu), so that a layer XLA cannot compile fails here and not on a reader's GPU.
XLA_ENV := PYTHONPATH=$(CURDIR)/tests/xla_as_on_gpu
test-xla: $(INSTALLED)
	@$(CPU_ENV) $(XLA_ENV) $(PY) -c 'from keras.src.trainers.trainer import Trainer as T; import sys; \
		sys.exit(0 if T._resolve_auto_jit_compile.__name__ == "<lambda>" else "tests/xla_as_on_gpu is not in effect")'
	$(TEST_ENV) $(XLA_ENV) $(PY) -m pytest $(NBVAL) --nbval-lax -n 2 --dist loadscope -q chapters

# The website: jupyter-book 1.x in its own venv (it pins its Sphinx stack), the stored outputs as they
# are, MathJax from the npm registry unpacked into the site (checksum in site/stage.py).
$(SITE_INSTALLED): requirements-site.txt
	$(REQUIRE_PYTHON)
	$(PYTHON) -m venv $(SITE_VENV)
	$(SITE_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(SITE_VENV)/bin/python -m pip install --quiet -r requirements-site.txt
	touch $(SITE_INSTALLED)

$(MATHJAX):
	@command -v npm >/dev/null || { echo "npm is needed once to fetch MathJax 3.2.2 from the npm registry"; exit 1; }
	mkdir -p $(dir $(MATHJAX))
	cd $(dir $(MATHJAX)) && npm pack --silent mathjax@3.2.2 >/dev/null

# EDITION=student builds the site of the student edition (answers stubbed, no solution) in build/site-student.
EDITION ?= full
SITE_OUT := build/$(if $(filter student,$(EDITION)),site-student,site)
html: $(SITE_INSTALLED) $(MATHJAX)
	$(SITE_VENV)/bin/python site/stage.py build/site_src $(MATHJAX) --edition $(EDITION)
	rm -rf $(SITE_OUT)
	$(SITE_VENV)/bin/jupyter-book build build/site_src --path-output $(SITE_OUT) -W -n --keep-going
	@echo "The website: $(SITE_OUT)/_build/html/index.html"

# Debian's Chromium for the browser test; installed when missing and we are root with apt-get.
chromium:
	@command -v chromium >/dev/null || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "installing Debian's chromium for the browser test"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; \
		else echo "Chromium is missing (Debian: sudo apt-get install chromium): the browser test will be skipped"; fi; }

# The reading path of `make lab`: every chapter through the real server's contents API, then one
# chapter in headless Chromium (in .venv-site, which has Playwright).
test-lab: $(LAB_SETTINGS) $(SITE_INSTALLED) chromium
	$(PY) -m pytest -q tests/lab/test_lab_server.py
	$(SITE_VENV)/bin/python -m pytest -q -rs tests/lab/test_lab_in_browser.py

test-site: html chromium
	$(MAKE) html EDITION=student
	$(SITE_VENV)/bin/python -m pytest -q -rs tests/site

# The student edition (classroom/student.py): each exercise's answer becomes a stub that raises
# NotImplementedError, its check cell stays; a self-contained bundle in build/student and build/student.zip.
student: $(INSTALLED)
	$(PY) classroom/student.py build/student

# Proved statically sound (no chapter re-run), no solution in any file of the bundle, and chapter 2 graded by
# nbgrader twice side by side: the instructor's version, and the bundle's notebook inside an unpacked bundle.
test-student: student $(NBGRADER_INSTALLED)
	$(TEST_ENV) MPLBACKEND=Agg $(PY) -m pytest -q -n 2 --dist load tests/editions

# nbgrader in its own venv (it pins notebook 7 and its Jupyter stack); the course's kernel runs .venv.
$(NBGRADER_INSTALLED): requirements-nbgrader.txt
	$(REQUIRE_PYTHON)
	$(PYTHON) -m venv $(NBGRADER_VENV)
	$(NBGRADER_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(NBGRADER_VENV)/bin/python -m pip install --quiet -r requirements-nbgrader.txt
	touch $(NBGRADER_INSTALLED)

# An nbgrader course in build/course: one assignment per chapter, the student versions in build/course/release;
# with STUDENTS=roster.txt (one id per line), each student's own BOOK_SEED in build/course/seeds.csv.
assignments: $(INSTALLED) $(NBGRADER_INSTALLED)
	$(NBGRADER_VENV)/bin/python classroom/assignments.py build/course $(if $(STUDENTS),--students $(STUDENTS))

# Autograde the submissions in build/course/submitted/*/ASSIGNMENT, e.g. make grade ASSIGNMENT=02_bptt.
grade: $(NBGRADER_INSTALLED)
	@test -n "$(ASSIGNMENT)" || { echo "name the assignment, e.g. make grade ASSIGNMENT=02_bptt"; exit 1; }
	$(CPU_ENV) $(NBGRADER_VENV)/bin/python classroom/assignments.py --grade build/course $(ASSIGNMENT)

lint: $(INSTALLED)
	$(VENV)/bin/ruff check utils tests data chapters site classroom
	$(VENV)/bin/ruff format --check utils tests data chapters site classroom

# Fresh notebooks from the .py sources, executed top to bottom (never --update: it keeps old outputs),
# stderr noise dropped, then the .py re-rendered from the notebook so the pair is exactly in sync.
# One chapter only: make outputs CHAPTERS=chapters/01_feedforward_vs_rnn.py
outputs: $(INSTALLED)
	@for source in $(CHAPTERS); do \
		notebook="$${source%.py}.ipynb"; \
		echo "executing $$source"; \
		$(CPU_ENV) $(OUTPUTS_ENV) $(VENV)/bin/jupytext --quiet --to ipynb --set-kernel python3 --execute "$$source" || exit 1; \
		$(PY) -m utils.notebooks "$$notebook" || exit 1; \
		$(VENV)/bin/jupytext --quiet --to py:percent "$$notebook" || exit 1; \
	done

# The chapter table of README.md from the times of the last chapter run (build/chapter_times.json).
readme: $(INSTALLED)
	$(PY) site/readme.py --record

data: $(INSTALLED)
	$(PY) data/build_data.py

clean:
	rm -rf $(VENV) $(SITE_VENV) $(NBGRADER_VENV) .venv-versions build
