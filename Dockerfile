# syntax=docker/dockerfile:1
# hwcap-operator: the operator + node agent image (default target `runtime`) and the small init image the webhook
# injects into pods (target `init`: hwcap-exec only, which copies itself into the pod's emptyDir). Both multi-arch
# from the repository root (README "Images"):
#   docker buildx build --platform linux/amd64,linux/arm64 -t ghcr.io/hwcap-dev/hwcap-operator:0.1.0 --push .
#   docker buildx build --platform linux/amd64,linux/arm64 --target init \
#       -t ghcr.io/hwcap-dev/hwcap-operator-init:0.1.0 --push .
# Debian 12 (bookworm) on both stages: the same musl-tools 1.2.3 the test suite builds hwcap-exec with.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# ---- builder: the static hwcap-exec (musl) and wheels of the package and its pinned dependencies -------------------
FROM ${PYTHON_IMAGE} AS builder
ENV BUILD_OUT=/out \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc=4:12.2.0-3 make=4.3-4.1 musl-tools=1.2.3-1 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Dependencies first (their own layer, rebuilt only when pyproject.toml changes): every pinned requirement as a wheel.
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; print(*tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies'], sep='\\n')" \
        > /tmp/requirements.txt \
    && python -m pip wheel --wheel-dir "${BUILD_OUT}/wheels" -r /tmp/requirements.txt
COPY src/ src/
# The init-step binary (static musl: it runs in any workload image) and the package's own wheel.
RUN make -C src/shim OUT="${BUILD_OUT}/hwcap-exec" \
    && "${BUILD_OUT}/hwcap-exec" --version \
    && python -m pip wheel --no-deps --wheel-dir "${BUILD_OUT}/wheels" .

# ---- init: the image the webhook injects as the install step (--target init) --------------------------------------
# Only the static hwcap-exec, at the path the operator's install command runs (`hwcap-exec --install DEST`): no
# shell, no libc, no Python, so every workload pod pulls a few hundred kilobytes instead of the operator image.
# The chart's initImage names it. Engine-free equivalent (dev cluster, tests): dev/hwcap_dev/images.
FROM scratch AS init
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="hwcap-operator-init" \
      org.opencontainers.image.description="Static hwcap-exec only: the init step that installs the HWCAP-mask wrapper into a pod" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="https://github.com/hwcap-dev/hwcap-operator" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder --chmod=0755 /out/hwcap-exec /usr/local/bin/hwcap-exec
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/hwcap-exec"]
CMD ["--version"]

# ---- sbom: a CycloneDX SBOM of the operator image's Python environment, produced by the build ---------------------
#   docker buildx build --platform linux/amd64,linux/arm64 --target sbom --output type=local,dest=sbom .
# writes sbom/linux_amd64/hwcap-operator.cdx.json and sbom/linux_arm64/... : the package and every pinned dependency
# as installed from the same wheels the runtime stage installs (cyclonedx-py in a venv of its own, not in the image).
FROM ${PYTHON_IMAGE} AS sbom-builder
ARG VERSION=0.1.0
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
COPY pyproject.toml /src/pyproject.toml
RUN --mount=type=bind,from=builder,source=/out/wheels,target=/wheels \
    python -m venv /scan \
    && /scan/bin/pip install --no-index --find-links /wheels "hwcap-operator==${VERSION}" \
    && python -m venv /tools \
    && /tools/bin/pip install cyclonedx-bom==7.5.0 \
    && mkdir /sbom \
    && /tools/bin/cyclonedx-py environment --pyproject /src/pyproject.toml --of JSON --output-reproducible \
       -o /sbom/hwcap-operator.cdx.json /scan/bin/python

FROM scratch AS sbom
COPY --from=sbom-builder /sbom/ /

# ---- runtime (the default target: the last stage) ------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="hwcap-operator" \
      org.opencontainers.image.description="Kubernetes operator, node agent and init step (hwcap-exec) that start every container of a migration domain under a common HWCAP mask" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="https://github.com/hwcap-dev/hwcap-operator" \
      org.opencontainers.image.url="https://github.com/hwcap-dev/hwcap-operator" \
      org.opencontainers.image.documentation="https://github.com/hwcap-dev/hwcap-operator/blob/main/docs/chart.md" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.vendor="hwcap-dev" \
      org.opencontainers.image.base.name="docker.io/library/python:3.11.14-slim-bookworm"
# Read-only root filesystem in the pods: never write bytecode next to the package.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN --mount=type=bind,from=builder,source=/out/wheels,target=/wheels \
    python -m pip install --no-index --find-links /wheels "hwcap-operator==${VERSION}" \
    && groupadd --system --gid 65532 nonroot \
    && useradd --system --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin nonroot
COPY --from=builder --chmod=0755 /out/hwcap-exec /usr/local/bin/hwcap-exec
USER 65532:65532
WORKDIR /
ENTRYPOINT ["hwcap-operator"]
CMD ["--help"]
