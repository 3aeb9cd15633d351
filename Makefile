# Both targets bootstrap .venv from pyproject.toml on first use (and again
# whenever pyproject.toml changes), then run.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-all bench venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/mapcert solve examples/vgg16_conv3_2_64KiB.yaml
	$(BIN)/mapcert solve examples/resnet18_layer4_eyeriss.yaml

test: $(STAMP)
	$(BIN)/python -m pytest -q -n auto

test-all: $(STAMP)
	$(BIN)/python -m pytest -q -n auto -m ''

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	$(BIN)/python benchmarks/tiling.py
	$(BIN)/python benchmarks/tiling_onchip.py
	$(BIN)/python benchmarks/tiling_onchip.py --gains bypass --presets eyeriss simba-pe
	$(BIN)/python benchmarks/tiling_onchip.py --gains fanouts --presets simba-like
	$(BIN)/python benchmarks/tiling_halo.py
	$(BIN)/python benchmarks/multilevel_exact_agree.py --time-limit 900
	$(BIN)/python benchmarks/multilevel_exact_agree.py --preset eyeriss-like --time-limit 900
	$(BIN)/python benchmarks/pim.py
	$(BIN)/python benchmarks/pairing_accuracy.py
	$(BIN)/python benchmarks/partition.py
	$(BIN)/python benchmarks/functional_multilevel.py
	$(BIN)/python benchmarks/multilevel_model_options.py
	$(BIN)/python benchmarks/time_limits.py
	$(BIN)/python benchmarks/verify.py
	$(BIN)/python benchmarks/sweep.py

clean:
	rm -rf $(VENV) build *.egg-info
