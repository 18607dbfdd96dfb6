# syntax=docker/dockerfile:1
# User-code image for the safetyamp_pipeline code location (official Dagster Helm chart).
# The chart runs `dagster api grpc` in it for the code server and `dagster api execute_run` in
# it for every run pod, so it holds the project and its production dependencies as locked in
# requirements.lock (dagster, dagster-postgres, dagster-k8s, dagster-azure, ...; regenerate it
# with the command at its top whenever pyproject.toml's dependencies change). No web server: the
# chart's webserver runs Dagster's own image. The instance config (dagster.yaml) is mounted by the chart
# from its ConfigMap; none is baked in.
#
#   docker build -t myregistry.azurecr.io/safetyamp-pipeline:1.0.0 .
#
# safetyamp_pipeline_tests/deploy/test_image_env.py rebuilds the builder stage's Python
# environment the same way (same COPY set, same pip install) and serves the code location.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

############################ builder: the virtualenv ############################
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

# unixodbc-dev and gcc only in case pyodbc has no wheel for the platform; they stay here.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc g++ unixodbc-dev \
    && rm -rf /var/lib/apt/lists/*

RUN python -m venv /opt/venv
ENV PATH="/opt/venv/bin:${PATH}"

# The project is installed in place (editable) at the fixed WORKDIR that the runtime stage
# copies as is: load_from_defs_folder finds the project root by the pyproject.toml above the
# package, which a plain install into site-packages would not have.
WORKDIR /opt/dagster/app
# image-env: the build context of the project (what the test copies) and the installs (the test
# runs these same commands in a fresh venv).
# Production dependencies first, exactly as resolved in requirements.lock (hash-checked; their
# layer is reused while the lock is unchanged). The sandbox and dev extras (starlette, uvicorn,
# trustme, pytest, ...) never reach the image.
COPY requirements.lock ./
RUN pip install --require-hashes --no-deps -r requirements.lock
COPY pyproject.toml ./
COPY safetyamp_pipeline/ ./safetyamp_pipeline/
RUN pip install --no-deps -e .

############################ runtime ############################
FROM ${PYTHON_IMAGE} AS runtime

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# A failing curl in the key pipe below must fail the build.
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# Microsoft ODBC Driver 18 for SQL Server (Viewpoint Vista) from Microsoft's Debian 12 repo,
# with the repo key in its own keyring (signed-by), not in the global trusted keys.
# Versions are not pinned: the security updates of the bookworm/Microsoft repos are wanted and
# the image is rebuilt on each release; the image tag is what pins a deployment.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl gnupg \
    && curl -fsSL https://packages.microsoft.com/keys/microsoft.asc \
       | gpg --dearmor -o /usr/share/keyrings/microsoft-prod.gpg \
    && echo "deb [arch=amd64,arm64 signed-by=/usr/share/keyrings/microsoft-prod.gpg] https://packages.microsoft.com/debian/12/prod bookworm main" \
       > /etc/apt/sources.list.d/mssql-release.list \
    && apt-get update \
    && ACCEPT_EULA=Y apt-get install -y --no-install-recommends msodbcsql18 unixodbc libgssapi-krb5-2 \
    && apt-get purge -y --auto-remove curl gnupg \
    && rm -rf /var/lib/apt/lists/*

# Non-root user with a fixed uid (runAsNonRoot in the pod security context can check it).
RUN groupadd --system --gid 10001 dagster \
    && useradd --system --uid 10001 --gid dagster --home-dir /opt/dagster --shell /usr/sbin/nologin dagster \
    && mkdir -p /opt/dagster/dagster_home \
    && chown dagster:dagster /opt/dagster/dagster_home

COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /opt/dagster/app /opt/dagster/app

# DAGSTER_HOME matches the chart's global.dagsterHome; the chart mounts dagster.yaml there.
ENV PATH="/opt/venv/bin:${PATH}" \
    DAGSTER_HOME=/opt/dagster/dagster_home

WORKDIR /opt/dagster/app
USER 10001:10001

EXPOSE 3030

CMD ["dagster", "api", "grpc", "-m", "safetyamp_pipeline.definitions", "-h", "0.0.0.0", "-p", "3030"]
