# syntax=docker/dockerfile:1
#
# Turnout image: one uvicorn process (`turnout serve` never forks workers; run more
# containers to scale out).
#
#   docker build -t turnout .
#   docker run --rm -p 127.0.0.1:8080:8080 -e TURNOUT_AUTH_DISABLED=true turnout
#
# The container listens on 0.0.0.0, so Turnout refuses to start unless
# TURNOUT_API_KEYS is set or TURNOUT_AUTH_DISABLED=true (only for a port published
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
RUN mkdir turnout && touch turnout/__init__.py \
    && pip install . \
    && pip uninstall -y turnout \
    && rm -rf turnout build ./*.egg-info

# The application, with its package data (turnout/data/**/*.json).
COPY turnout ./turnout
RUN pip install --no-deps . \
    && python -c "import importlib.resources as r; assert r.files('turnout').joinpath('data/openrouter').is_dir()"

# --- runtime: the venv only ----------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

ENV PATH=/opt/venv/bin:$PATH \
    LITELLM_LOCAL_MODEL_COST_MAP=True \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TURNOUT_HOST=0.0.0.0 \
    TURNOUT_PORT=8080 \
    TURNOUT_DATA_DIR=/data

RUN groupadd --system --gid 10001 turnout \
    && useradd --system --uid 10001 --gid turnout --create-home --home-dir /home/turnout \
       --shell /usr/sbin/nologin turnout \
    && mkdir -p /data \
    && chown turnout:turnout /data

COPY --from=builder /opt/venv /opt/venv

USER 10001:10001
WORKDIR /home/turnout

# The last good pool (pool.json) survives restarts here.
VOLUME ["/data"]

EXPOSE 8080

# Liveness via python's urllib (slim has no curl); urlopen raises on errors and non-2xx.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('TURNOUT_PORT', '8080'), timeout=4)"]

CMD ["turnout", "serve"]
