# syntax=docker/dockerfile:1
# tsunagu: multi-stage build — wheels are built in the first stage, the runtime stage
# carries only the installed packages (Sudachi dictionary included) and runs as non-root.

FROM python:3.11-slim AS build
WORKDIR /src
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY intents ./intents
COPY knowledge ./knowledge
COPY handoff ./handoff
RUN python -m venv /opt/tsunagu \
 && /opt/tsunagu/bin/pip install --upgrade pip \
 && /opt/tsunagu/bin/pip install .

FROM python:3.11-slim AS runtime
ENV PATH=/opt/tsunagu/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    TSUNAGU_HOST=0.0.0.0 \
    TSUNAGU_PORT=8080 \
    TSUNAGU_DB=/data/tsunagu.db
RUN groupadd --system tsunagu && useradd --system --gid tsunagu --home-dir /data tsunagu \
 && mkdir -p /data && chown tsunagu:tsunagu /data
COPY --from=build /opt/tsunagu /opt/tsunagu
# The Sudachi dictionary ships inside the sudachidict-core wheel installed above;
# loading it once at build time proves it is present (no download at run time).
RUN python -c "from sudachipy import Dictionary; Dictionary(dict='core')"
USER tsunagu
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4).status == 200 else 1)"
CMD ["tsunagu", "serve"]
