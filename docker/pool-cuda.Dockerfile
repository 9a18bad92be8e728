# Pool image, CUDA: Ray Serve + vLLM (and the CPU backends) for GPU ModelPools.
# Build from the repository root: docker build -f docker/pool-cuda.Dockerfile -t ponder-pool-cuda:0.1.0 .
ARG RAY_VERSION=2.44.1
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS wheel
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY services ./services
COPY operators ./operators
RUN pip wheel --no-deps --wheel-dir /wheels .

FROM rayproject/ray:${RAY_VERSION}-py311-cu121
ARG RAY_VERSION
ARG VLLM_VERSION=0.6.6.post1
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY --from=wheel /wheels /tmp/wheels
RUN pip install "ray[serve]==${RAY_VERSION}" "vllm==${VLLM_VERSION}" "$(ls /tmp/wheels/*.whl)[gpu]" && rm -rf /tmp/wheels
USER 1000
