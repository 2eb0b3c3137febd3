"""ASGI entry point for uvicorn/gunicorn: ``uvicorn fairtrain.asgi:app``."""

from __future__ import annotations

from fairtrain.app import create_app

app = create_app()
