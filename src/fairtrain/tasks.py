"""Imports every module that registers job handlers, so any worker process knows them all."""

from __future__ import annotations

import importlib

__all__ = ["TASK_MODULES", "register_all"]

# Each module registers its handlers with @job_handler at import time.
TASK_MODULES: tuple[str, ...] = (
    "fairtrain.ingest.process",
    "fairtrain.delivery.build",
    "fairtrain.withdrawal.webhooks",
)


def register_all() -> None:
    for module in TASK_MODULES:
        importlib.import_module(module)
