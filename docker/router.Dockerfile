# Router and consolidator: `ponder router-serve` / `ponder consolidator-serve`.
# Build from the repository root: docker build -f docker/router.Dockerfile -t ponder:0.1.0 .
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY services ./services
COPY operators ./operators
RUN pip install --upgrade "pip==24.3.1" && pip install .

FROM ${PYTHON_IMAGE}
ENV PATH=/opt/venv/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
RUN groupadd --gid 10001 ponder && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin ponder
COPY --from=build /opt/venv /opt/venv
USER 10001:10001
EXPOSE 50051 9464
ENTRYPOINT ["ponder"]
CMD ["router-serve", "--config", "/etc/ponder/ponder.yaml"]
