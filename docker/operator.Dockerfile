# Operator: kopf handlers behind Lease leader election (`python -m ponder_operator`).
# Build from the repository root: docker build -f docker/operator.Dockerfile -t ponder-operator:0.1.0 .
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY services ./services
COPY operators ./operators
RUN pip install --upgrade "pip==24.3.1" && pip install ".[k8s]"

FROM ${PYTHON_IMAGE}
ENV PATH=/opt/venv/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
RUN groupadd --gid 10001 ponder && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin ponder
COPY --from=build /opt/venv /opt/venv
USER 10001:10001
ENTRYPOINT ["python", "-m", "ponder_operator"]
CMD ["--all-namespaces"]
