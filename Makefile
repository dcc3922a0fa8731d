# One command each for a fresh machine: `make demo` runs the main job,
# `make test` runs the test suite. Both create .venv when it is missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv demo test test-all train default-model clean

$(STAMP): requirements.txt setup.py setup.cfg package.xml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(PY) -m video_predictor.demo

test: $(STAMP)
	$(PY) -m pytest -q -m "not slow and not gpu"

test-all: $(STAMP)
	$(PY) -m pytest -q

train: $(STAMP)
	$(PY) -m training.train

# Rebuilds the shipped default model exactly as it was made: train, export, copy in.
default-model: $(STAMP)
	$(PY) -m training.train --out runs/default
	$(PY) -m training.export --checkpoint runs/default/model.pt --out runs/default/model.onnx
	cp runs/default/model.pt video_predictor/pretrained/default.pt
	cp runs/default/model.onnx video_predictor/pretrained/default.onnx

clean:
	rm -rf build install log .pytest_cache
