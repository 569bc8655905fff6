# teleconsult server image: one process serving REST, socket.io and the web client.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY rooms rooms
COPY storage storage
COPY signaling signaling
COPY media media
COPY notify notify
COPY teleconsult teleconsult
COPY web_client web_client
RUN pip install --no-cache-dir .
# The call pages' code as one file each (teleconsult/web_bundle.py); esbuild is not kept.
RUN apt-get update && apt-get install -y --no-install-recommends esbuild \
    && python -m teleconsult.web_bundle \
    && apt-get purge -y esbuild && rm -rf /var/lib/apt/lists/*
ENV HOST=0.0.0.0 PORT=8080 DATA_DIR=/data
VOLUME /data
EXPOSE 8080
CMD ["teleconsult", "serve"]
