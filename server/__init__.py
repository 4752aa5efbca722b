"""assistd: a self-hosted server for the OpenAI Assistants API v2."""

import os

__version__ = "0.1.0"

# Zero egress unless configured: set before anything can import litellm, the HF hub or
# Chroma (litellm otherwise fetches its model cost map from the internet on import).
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
# Every other catalog, check or tokenizer litellm would fetch on its own: its bundled
# copies instead (litellm's documented switches).
os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
os.environ.setdefault("LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS", "true")
# ONNX Runtime (the search query encoder) sends usage telemetry to Microsoft's
# mobile.events.data.microsoft.com: seen as DNS lookups from the offline test's namespace.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
# A server's log is lines, not progress bars (transformers draws one loading weights).
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TQDM_DISABLE", "1")
