"""ASGI entry point for uvicorn/gunicorn: ``uvicorn fairtrain.asgi:app``.

``fairtrain serve --workers N`` starts each worker as a fresh interpreter that imports this
module, and operators may point uvicorn or gunicorn at it directly: either way
``fairtrain serve``'s own start-up has not run there, so the allocator settings
(:func:`fairtrain.memory.configure_malloc`) are applied here, before the app starts any
thread.
"""

from __future__ import annotations

from fairtrain.app import create_app
from fairtrain.config import get_settings
from fairtrain.memory import configure_malloc

settings = get_settings()
configure_malloc(settings.malloc_arena_max, settings.malloc_mmap_threshold)
app = create_app(settings)
