"""fairtrain: people license their own data for AI training on terms they set."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("fairtrain")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

__all__ = ["__version__"]
