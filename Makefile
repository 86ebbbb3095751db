# The two commands of the course (README, "Quick start"):
#   make lab    install what is missing, then open the notebooks in JupyterLab
#   make test   format, lint, unit/integration/doc tests, then every notebook executed and its page checked
SHELL := /bin/bash
VENV := .venv
export JUPYTER_PATH := $(CURDIR)/$(VENV)/share/jupyter
# Jupyter refuses to run as root unless told (containers and CI machines often are root).
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: lab test check notebooks book clean

lab:
	@tools/setup.sh lab
	$(VENV)/bin/jupyter lab --ServerApp.root_dir=notebooks $(ALLOW_ROOT) $(LAB_ARGS)

test:
	@tools/setup.sh test
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings
	cargo test
	RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --quiet
	$(VENV)/bin/python -m pytest tests/notebooks -v

# The Rust checks alone (no notebooks).
check:
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings
	cargo test
	RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --quiet

# Execute notebooks without pytest, e.g. `make notebooks NB=notebooks/01-*.ipynb` (solutions too:
# `NB=notebooks/solutions/01-*.ipynb`; their executed copies go to build/notebooks/solutions/).
NB ?= notebooks/*.ipynb notebooks/solutions/*.ipynb
notebooks:
	@tools/setup.sh test
	$(VENV)/bin/python tools/run_notebook.py $(NB)

clean:
	rm -rf build
