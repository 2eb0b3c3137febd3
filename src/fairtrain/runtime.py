"""The services one process builds from its settings, shared by requests and jobs.

Built once per process (by ``create_app`` or ``fairtrain worker``) and handed to job
handlers, so a handler uses the same settings, vault backend and key ring as the
process that runs it, never a module-level global.
"""

from __future__ import annotations

from functools import cached_property

from fairtrain.config import Settings
from fairtrain.vault.service import Vault

__all__ = ["Runtime"]


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @cached_property
    def vault(self) -> Vault:
        """Built on first use: a process that never touches media never opens the store."""
        return Vault.from_settings(self.settings)
