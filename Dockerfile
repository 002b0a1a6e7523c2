# Enrich: `enrich serve` (deployments enrich-file and enrich-inbox), or any `enrich` command.
# Build:  docker build -t enrich .                    (here: ../shared/tools/build-image . enrich:local)
# Run:    README.md, "Docker" (volume ownership, stop timeout, one-shot jobs).
#
# The base: pin it by digest for a reproducible build, e.g.
#   docker build --build-arg PYTHON_BASE=python:3.11-slim@sha256:<digest> -t enrich .
# with <digest> from `docker buildx imagetools inspect python:3.11-slim` (refresh it monthly for
# Debian's security fixes). The default stays the tag: a digest the builder cannot resolve (an
# offline mirror, a stand-in base) fails the build.
ARG PYTHON_BASE=python:3.11-slim

# The installers: a pinned pip and setuptools (hash-checked), outside the image's venv.
FROM ${PYTHON_BASE} AS tools
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
COPY requirements-bootstrap.lock /locks/
RUN python -m venv /opt/tools \
 && /opt/tools/bin/pip install --require-hashes -r /locks/requirements-bootstrap.lock

# Layer 1, the dependencies: rebuilt only when requirements-runtime.lock changes. The venv has no
# pip of its own (13 MB it never uses); the tools' pip installs into it with --python.
FROM tools AS dependencies
COPY requirements-runtime.lock /locks/
COPY docker/trim-site-packages.sh /usr/local/bin/
RUN python -m venv --without-pip /opt/enrich \
 && /opt/tools/bin/pip --python /opt/enrich/bin/python install --require-hashes \
      -r /locks/requirements-runtime.lock \
 && sh /usr/local/bin/trim-site-packages.sh /opt/enrich/lib/python3.11/site-packages

# Layer 2, the app: a wheel built with the pinned setuptools (no build isolation, so nothing
# unpinned is downloaded), installed under /opt/app with the venv's layout.
FROM dependencies AS app
COPY pyproject.toml README.md /src/
COPY enrich /src/enrich
COPY service /src/service
COPY flows /src/flows
COPY benchmarks /src/benchmarks
RUN /opt/tools/bin/pip wheel --no-deps --no-build-isolation --wheel-dir /dist /src \
 && /opt/tools/bin/pip --python /opt/enrich/bin/python install --no-deps --no-index \
      --prefix /opt/app /dist/enrich-*.whl

FROM ${PYTHON_BASE}
# tini as PID 1: signals reach enrich from the first second (a PID 1 without a handler ignores
# SIGTERM), and exited children are reaped.
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends tini >/dev/null \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin \
 && groupadd --gid 10001 enrich \
 && useradd --uid 10001 --gid enrich --create-home --home-dir /home/enrich enrich \
 && mkdir -p /data \
 && chown enrich:enrich /data
COPY --from=dependencies /opt/enrich /opt/enrich
COPY --from=app /opt/app/ /opt/enrich/
COPY docker/entrypoint.sh /usr/local/bin/enrich-entrypoint
COPY docker/healthcheck.py /usr/local/bin/enrich-healthcheck
# Everything the container keeps (Prefect's database and logs, the response cache, inbox, outbox)
# is under /data: one volume. The runner's control endpoint stays on loopback, unpublished: it
# serves an unauthenticated POST /shutdown; the healthcheck reaches it from inside.
ENV PATH=/opt/enrich/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PREFECT_HOME=/data/.prefect \
    PREFECT_SERVER_ANALYTICS_ENABLED=false \
    ENRICH_CACHE_DIR=/data/cache \
    PREFECT_RUNNER_SERVER_ENABLE=true \
    PREFECT_RUNNER_SERVER_HOST=127.0.0.1 \
    PREFECT_RUNNER_SERVER_PORT=8080
USER enrich
WORKDIR /data
VOLUME /data
# Probes serve's runner; for a one-shot command (run, demo, mock-api...) it has nothing to probe
# and reports healthy.
HEALTHCHECK --interval=30s --timeout=5s --start-period=90s --retries=3 CMD ["enrich-healthcheck"]
ENTRYPOINT ["/usr/bin/tini", "--", "enrich-entrypoint"]
# Without PREFECT_API_URL, serve starts a local Prefect server (SQLite under /data/.prefect).
CMD ["enrich", "serve", "--spec", "/data/spec.toml", "--inbox", "/data/inbox", "--outbox", "/data/outbox"]
