# syntax=docker/dockerfile:1
#
# Switchyard image: one uvicorn process (`switchyard serve` never forks workers; run more
# containers to scale out).
#
#   docker build -t switchyard .
#   docker run --rm -p 127.0.0.1:8080:8080 -e SWITCHYARD_AUTH_DISABLED=true switchyard
#
# The container listens on 0.0.0.0, so Switchyard refuses to start unless
# SWITCHYARD_API_KEYS is set or SWITCHYARD_AUTH_DISABLED=true (only for a port published
# on the host's loopback). Without OPENROUTER_API_KEY it runs the built-in sandbox.
# Keys are passed at run time (-e / env_file), never baked into the image.

ARG PYTHON_IMAGE=python:3.11-slim

# --- builder: a self-contained venv at /opt/venv -------------------------------------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH

RUN python -m venv /opt/venv

WORKDIR /src

# Dependencies first (cached until pyproject.toml changes): install the project with a
# stub package, then drop it.
COPY pyproject.toml README.md* ./
RUN mkdir app && touch app/__init__.py \
    && pip install . \
    && pip uninstall -y switchyard \
    && rm -rf app build ./*.egg-info

# The application, with its package data (app/data/**/*.json).
COPY app ./app
RUN pip install --no-deps . \
    && python -c "import importlib.resources as r; assert r.files('app').joinpath('data/openrouter').is_dir()"

# --- runtime: the venv only ----------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

ENV PATH=/opt/venv/bin:$PATH \
    LITELLM_LOCAL_MODEL_COST_MAP=True \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    SWITCHYARD_HOST=0.0.0.0 \
    SWITCHYARD_PORT=8080 \
    SWITCHYARD_DATA_DIR=/data

RUN groupadd --system --gid 10001 switchyard \
    && useradd --system --uid 10001 --gid switchyard --create-home --home-dir /home/switchyard \
       --shell /usr/sbin/nologin switchyard \
    && mkdir -p /data \
    && chown switchyard:switchyard /data

COPY --from=builder /opt/venv /opt/venv

USER 10001:10001
WORKDIR /home/switchyard

# The last good pool (pool.json) survives restarts here.
VOLUME ["/data"]

EXPOSE 8080

# Liveness via python's urllib (slim has no curl); urlopen raises on errors and non-2xx.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('SWITCHYARD_PORT', '8080'), timeout=4)"]

CMD ["switchyard", "serve"]
