# The kubesteps operator image. Build from the repository root: `docker build -t kubesteps:TAG .`
# Both stages use the same base, so the venv's interpreter symlink resolves in the final stage.
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
# The runtime venv gets no pip of its own: the builder's pip installs into it with --python,
# and compiles the bytecode there, so nothing needs to write .pyc files at run time.
RUN python -m venv --without-pip /opt/kubesteps
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator/ operator/
RUN pip install --no-cache-dir --python /opt/kubesteps/bin/python .

FROM ${PYTHON_IMAGE}
ARG PYTHON_IMAGE
LABEL org.opencontainers.image.title="kubesteps" \
      org.opencontainers.image.description="Kubernetes operator for Pipeline resources, and the steps engine inside it" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="${PYTHON_IMAGE}"
# Nothing at run time installs packages, so the base image's pip and setuptools only widen
# the attack surface (and the CVE scanner's report).
RUN python -m pip uninstall --yes pip setuptools wheel
COPY --from=builder /opt/kubesteps /opt/kubesteps
# The root filesystem is read-only in the chart: bytecode was compiled at install time, and
# anything that insists on a home directory gets the writable /tmp emptyDir.
ENV PATH="/opt/kubesteps/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
# A numeric user, so Kubernetes can verify runAsNonRoot without an /etc/passwd entry.
USER 65532:65532
# 8080: kopf liveness endpoint (/healthz); 9090: Prometheus metrics (/metrics).
EXPOSE 8080 9090
ENTRYPOINT ["kubesteps", "operator"]
