"""Operating assistd: logs with request and run context, Prometheus metrics, OpenTelemetry
traces and usage records. Metrics, traces and usage hang on the run-observer seam
(server/runs/observe.py) and on one ASGI middleware (http.py); nothing here is on the
path of a request unless it is turned on."""
