# The assistd server image: embedded defaults (SQLite, local files) under /data.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY server ./server
COPY sandbox ./sandbox
COPY retrieval ./retrieval
# The postgres extra: compose.yaml runs it on PostgreSQL.
RUN pip install --no-cache-dir '.[postgres]'
ENV ASSISTD_DATA_DIR=/data
VOLUME /data
EXPOSE 8000
# Binding 0.0.0.0 needs an API key (ASSISTD_API_KEYS or `assistd keys create`) or
# --allow-insecure; see compose.yaml.
CMD ["assistd", "serve", "--host", "0.0.0.0", "--port", "8000"]
