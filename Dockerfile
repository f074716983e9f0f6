# replay-catalog: build the virtualenv in one stage, run it as a non-root user in another.
FROM python:3.11-slim AS build
WORKDIR /src
RUN python -m venv /opt/venv
# Exactly the versions in requirements.lock, each checked against its hash (docs/operations.md, "Docker").
COPY requirements.lock ./
RUN /opt/venv/bin/pip install --no-cache-dir --require-hashes -r requirements.lock
COPY pyproject.toml README.md ./
COPY replay_catalog ./replay_catalog
COPY schema ./schema
COPY resolvers ./resolvers
COPY storage ./storage
COPY domain ./domain
COPY tencent ./tencent
RUN /opt/venv/bin/pip install --no-cache-dir --no-deps .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 catalog && mkdir /data && chown catalog /data
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    DATABASE_URL=sqlite+aiosqlite:////data/replay-catalog.db
USER catalog
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4).status != 200)"]
CMD ["replay-catalog", "serve", "--host", "0.0.0.0", "--port", "8000"]
