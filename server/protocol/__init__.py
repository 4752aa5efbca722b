"""The wire format: request and response models of the Assistants API v2, kept apart
from storage (server/models.py) and serving logic (server/routers, server/crud)."""
