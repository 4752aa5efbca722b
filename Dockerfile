# The assistd server image: embedded defaults (SQLite, local files) under /data.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY server ./server
COPY sandbox ./sandbox
COPY retrieval ./retrieval
RUN pip install --no-cache-dir .
ENV ASSISTD_DATA_DIR=/data
VOLUME /data
EXPOSE 8000
# Binding 0.0.0.0 needs ASSISTD_API_KEYS (or --allow-insecure); compose.yaml sets keys.
CMD ["assistd", "serve", "--host", "0.0.0.0", "--port", "8000"]
