# The tenantry image: the API (`tenantry serve`, the default command) and the workflow worker
# (`tenantry worker`, the second command: `docker run IMAGE worker`, or `args: ["worker"]` in
# deploy/kubernetes/worker-deployment.yaml). Server mode: give it TENANTRY_DATABASE_URL (and
# TENANTRY_REDIS_URL); the embedded PostgreSQL is for one process on one machine, not for an image
# run as several replicas. Linted by hadolint (tests/test_deploy.py, `make lint`); not built in CI.

# -- build: the wheel of this checkout and its dependencies, in a virtual environment ----------
FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN python -m venv /opt/tenantry \
    && /opt/tenantry/bin/pip install --no-cache-dir .

# -- run: the environment alone, as an unprivileged user ----------------------------------------
FROM python:3.11-slim-bookworm
ENV PATH=/opt/tenantry/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/var/lib/tenantry \
    TENANTRY_HOST=0.0.0.0 \
    TENANTRY_PORT=8000 \
    TENANTRY_DATA_DIR=/var/lib/tenantry
RUN groupadd --system --gid 10001 tenantry \
    && useradd --system --no-log-init --uid 10001 --gid tenantry \
        --home-dir /var/lib/tenantry --create-home --shell /usr/sbin/nologin tenantry
COPY --from=build /opt/tenantry /opt/tenantry
COPY deploy/healthcheck.py /opt/tenantry/healthcheck.py
USER 10001:10001
WORKDIR /var/lib/tenantry
EXPOSE 8000
# The API's liveness route; a worker container (no HTTP server) passes while its process runs.
# Kubernetes ignores this and uses the probes of deploy/kubernetes/api-deployment.yaml.
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "/opt/tenantry/healthcheck.py"]
ENTRYPOINT ["tenantry"]
CMD ["serve"]
