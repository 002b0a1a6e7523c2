# Enrich: `enrich serve` (deployments enrich-file and enrich-inbox) in a slim image.
# Build: docker build -t enrich .
# Run:   docker run -p 8080:8080 -v $PWD/data:/data enrich   (spec at /data/spec.toml)
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
# Dependencies first, from the hash-pinned runtime lock, so code changes keep this layer cached.
# A pinned pip first: older pips mis-resolve an extra (sqlalchemy[asyncio]) in hash-checking mode.
COPY requirements-bootstrap.lock requirements-runtime.lock ./
RUN python -m venv /opt/enrich \
 && /opt/enrich/bin/pip install --require-hashes -r requirements-bootstrap.lock \
 && /opt/enrich/bin/pip install --require-hashes -r requirements-runtime.lock
COPY pyproject.toml README.md ./
COPY enrich ./enrich
COPY service ./service
COPY flows ./flows
COPY benchmarks ./benchmarks
RUN /opt/enrich/bin/pip install --no-deps .

FROM python:3.11-slim
RUN groupadd --gid 10001 enrich \
 && useradd --uid 10001 --gid enrich --create-home --home-dir /home/enrich enrich \
 && mkdir -p /data/inbox /data/outbox \
 && chown -R enrich:enrich /data
COPY --from=build /opt/enrich /opt/enrich
ENV PATH=/opt/enrich/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PREFECT_HOME=/home/enrich/.prefect \
    PREFECT_SERVER_ANALYTICS_ENABLED=false \
    ENRICH_CACHE_DIR=/data/cache \
    PREFECT_RUNNER_SERVER_ENABLE=true \
    PREFECT_RUNNER_SERVER_HOST=0.0.0.0 \
    PREFECT_RUNNER_SERVER_PORT=8080
USER enrich
WORKDIR /data
EXPOSE 8080
# The runner's health endpoint (on once the deployments are served).
HEALTHCHECK --interval=30s --timeout=5s --start-period=90s --retries=3 \
  CMD python -c "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/health', timeout=4).status == 200 else 1)"
# Without PREFECT_API_URL, serve starts a local Prefect server (SQLite in PREFECT_HOME) on 4200.
CMD ["enrich", "serve", "--spec", "/data/spec.toml", "--inbox", "/data/inbox", "--outbox", "/data/outbox"]
