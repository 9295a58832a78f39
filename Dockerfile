# syntax=docker/dockerfile:1
# Build: docker build -t governance .
# Run:   docker run -p 8000:8000 -e GOVERNANCE_DATABASE_URL=postgresql+psycopg://… governance
# Check: make image-check (builds it with podman and starts it as uid 10001; docs/operations.md)

FROM python:3.11-slim AS build
WORKDIR /src
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --upgrade pip && pip install .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 governance
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY migrations ./migrations
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    GOVERNANCE_MIGRATIONS_DIR=/app/migrations \
    GOVERNANCE_HOST=0.0.0.0 \
    GOVERNANCE_PORT=8000 \
    GOVERNANCE_DATABASE_URL=sqlite:////app/data/governance.db
RUN mkdir -p /app/data && chown governance /app/data
USER governance
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request,os; urllib.request.urlopen(f'http://127.0.0.1:{os.environ[\"GOVERNANCE_PORT\"]}/healthz')"
CMD ["sh", "-c", "governance migrate && exec governance serve"]
