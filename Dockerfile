# syntax=docker/dockerfile:1
# regfed's production image: the wheel and its runtime dependencies, nothing else — no
# compiler, no grpcio-tools, no demo or cli extras (no embedded PostgreSQL, no QR reader).
#
#   docker build -t regfed .
#   docker run -v "$PWD/secrets:/run/regfed/secrets:ro" -v "$PWD/tls:/run/secrets/regfed/tls:ro" \
#     -e REGFED_STORE_DSN=... -e REGFED_CITY_DSN=... -e REGFED_FEDERAL_DSN=... -p 50051:50051 regfed
#
# It serves on 0.0.0.0 with TLS (the files below, mounted), or in plaintext only when told
# so explicitly: `docker run ... regfed serve --insecure`. The dependencies are the ones
# `make test` ran with (constraints.txt). Docker cannot run on the development machines:
# `make deploy-check` lints this file (hadolint) and tests/unit/test_dockerfile.py checks
# its stages, base image, user and entry point.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY constraints.txt ./
RUN pip install --no-cache-dir --constraint constraints.txt build
COPY pyproject.toml setup.py MANIFEST.in LICENSE README.md ./
COPY tools/protogen.py tools/
COPY protos/ protos/
COPY src/ src/
# The build hook generates regfed.v1 from protos/ in an isolated environment.
RUN python -m build --wheel --outdir /dist .

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="regfed" \
      org.opencontainers.image.description="Signed COVID-19 certificates from federated registries, over gRPC" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# A fixed UID/GID, so Kubernetes' runAsNonRoot can check it and volume ownership is known.
RUN groupadd --system --gid 10001 regfed \
    && useradd --system --uid 10001 --gid regfed --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin regfed
COPY --from=build /dist/ /tmp/dist/
COPY constraints.txt /tmp/dist/
RUN pip install --no-cache-dir --constraint /tmp/dist/constraints.txt /tmp/dist/regfed-*.whl \
    && pip uninstall --yes setuptools wheel \
    && rm -rf /tmp/dist

# Listen on every interface, with TLS from a mounted secret folder: the server refuses a
# plaintext non-loopback address unless `serve --insecure` is given. Health (plaintext,
# for Kubernetes' gRPC probes) and metrics get ports of their own. Secrets are files in
# mounted folders, never variables or layers; the image holds none. (DL3064 mistakes the
# *_KEY_FILE and *_TOKEN_FILE paths for secrets.)
# hadolint ignore=DL3064
ENV REGFED_LISTEN=0.0.0.0:50051 \
    REGFED_HEALTH_LISTEN=0.0.0.0:8081 \
    REGFED_METRICS_LISTEN=0.0.0.0:9090 \
    REGFED_LOG_FORMAT=json \
    REGFED_TLS_CERT_FILE=/run/secrets/regfed/tls/tls.crt \
    REGFED_TLS_KEY_FILE=/run/secrets/regfed/tls/tls.key \
    REGFED_KEYS_DIR=/run/regfed/secrets/signing-keys \
    REGFED_PERSON_KEY_FILE=/run/regfed/secrets/person-key/person.key \
    REGFED_OPERATOR_TOKEN_FILE=/run/regfed/secrets/operator-token/operator.token \
    REGFED_TRUST_DIR=/etc/regfed/trust \
    REGFED_HOME=/tmp/regfed
EXPOSE 50051 8081 9090
USER 10001:10001
WORKDIR /tmp
ENTRYPOINT ["regfed"]
CMD ["serve"]
