# Pool image, CPU: Ray Serve + llama.cpp (GGUF), OpenAI-compatible and sim backends.
# KubeRay runs it for ModelPools without GPUs; RAY_VERSION must equal ModelPool.spec.ray_version
# (its default, ponder.common.crd_models.RAY_VERSION; a test checks they agree).
# Build from the repository root: docker build -f docker/pool-cpu.Dockerfile -t ponder-pool:0.1.0 .
ARG RAY_VERSION=2.44.1
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS wheel
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY services ./services
COPY operators ./operators
RUN pip wheel --no-deps --wheel-dir /wheels .

FROM rayproject/ray:${RAY_VERSION}-py311-cpu
ARG RAY_VERSION
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY --from=wheel /wheels /tmp/wheels
# llama-cpp-python builds from source; pin ray so the backend install cannot move it.
RUN pip install "ray[serve]==${RAY_VERSION}" "$(ls /tmp/wheels/*.whl)[cpu]" && rm -rf /tmp/wheels
# The base image's user `ray` (uid 1000) matches the pods' runAsUser.
USER 1000
