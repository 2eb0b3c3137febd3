"""Settings: one typed class, read from ``FAIRTRAIN_*`` environment variables and ``.env``.

Outside demo/dev mode the app refuses to start with a missing or default secret and says
which one (``Settings.insecure_reasons``). In demo/dev mode missing key files are created
under ``data_dir/keys`` so ``make run`` works on a fresh machine.
"""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = [
    "DEFAULT_CONTRIBUTION_UNITS",
    "KNOWN_DEFAULT_SECRETS",
    "ContributionUnit",
    "Mode",
    "Settings",
    "get_settings",
    "reset_settings_cache",
]

# Secrets that appear in examples and tutorials; a production server must not run with them.
KNOWN_DEFAULT_SECRETS = frozenset(
    {"", "change-me", "changeme", "secret", "dev", "demo", "password", "fairtrain"}
)
MIN_SECRET_LENGTH = 32


class Mode(StrEnum):
    PRODUCTION = "production"
    DEV = "dev"
    DEMO = "demo"


class ContributionUnit(StrEnum):
    """What one unit of contribution is, for weighting royalties between contributors."""

    MINUTES = "minutes"  # of recorded audio or video
    ITEMS = "items"  # one photo, one text: each counts as one
    MESSAGES = "messages"  # of the contributor's own in a chat export
    PAGES = "pages"  # of a document scan


# Royalty weight per modality; override with FAIRTRAIN_CONTRIBUTION_UNITS (JSON).
DEFAULT_CONTRIBUTION_UNITS: dict[str, ContributionUnit] = {
    "audio": ContributionUnit.MINUTES,
    "video": ContributionUnit.MINUTES,
    "image": ContributionUnit.ITEMS,
    "chat": ContributionUnit.MESSAGES,
    "text": ContributionUnit.ITEMS,
    "document": ContributionUnit.PAGES,
}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="FAIRTRAIN_", env_file=".env", extra="ignore", validate_default=True
    )

    mode: Mode = Mode.PRODUCTION
    data_dir: Path = Path("var")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: SQLite file in data_dir."
    )
    vault_url: str | None = Field(
        default=None,
        description="file:///path or s3://bucket?endpoint=http://host:port (default: data_dir).",
    )
    jobs_url: str | None = Field(
        default=None,
        description="sqlite:///path (embedded), redis://host:port/db, or 'immediate' (tests).",
    )
    secret_key: SecretStr | None = Field(
        default=None, description="Signs sessions, CSRF tokens and download links."
    )
    kek_path: Path | None = Field(
        default=None, description="Vault key-encryption key file (32 random bytes, base64)."
    )
    signing_key_path: Path | None = Field(
        default=None, description="Platform Ed25519 private key (PEM): audit, receipts, licences."
    )
    base_url: str = "http://127.0.0.1:8000"
    # The embedded default runs job workers in threads of the web process; at scale set
    # this to false and run `fairtrain worker` processes against a Redis queue.
    jobs_in_process: bool = True
    jobs_in_process_workers: int = 2
    # A running job whose process has not touched it for this long is taken over.
    jobs_lease_seconds: float = Field(default=45.0, ge=1.0)
    # Workers also mark consent whose end date passed as expired this often (0: never;
    # then run `fairtrain consent expire` from cron).
    consent_expiry_every_seconds: float = Field(default=300.0, ge=0.0)
    # glibc malloc arenas (docs/reliability.md "Load"): 0 keeps glibc's 8 per core.
    malloc_arena_max: int = Field(default=2, ge=0)
    # glibc's mmap threshold, fixed (fairtrain.memory); 0 keeps glibc's sliding one.
    malloc_mmap_threshold: int = Field(default=4 * 1024 * 1024, ge=0, le=32 * 1024 * 1024)
    # Diagnostics for soaks (docs/reliability.md "Load"): off unless a path is given.
    memory_trace_path: Path | None = Field(
        default=None,
        description="`fairtrain serve` appends memory dumps here (RSS, heap, live objects).",
    )
    memory_trace_every_seconds: float = Field(default=60.0, gt=0.0)
    # > 0 also starts tracemalloc with this many frames: it slows the server many times
    # over and adds memory of its own, so it is asked for, never implied by the path.
    memory_trace_frames: int = Field(default=0, ge=0)
    metrics_token: SecretStr | None = Field(
        default=None,
        description="Bearer token a Prometheus scraper sends to GET /metrics (operators "
        "may always read it with their session).",
    )

    # Sessions and login throttling.
    session_ttl_seconds: int = 60 * 60 * 24 * 14
    login_max_failures: int = 5
    login_lockout_seconds: int = 15 * 60
    cookie_secure: bool = False
    # argon2id costs; the defaults follow argon2-cffi's (RFC 9106 "second choice").
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65536
    argon2_parallelism: int = 4

    # Request limits (uploads have their own per-modality limits below).
    max_json_body_bytes: int = 1_048_576
    # Uploads: a ceiling for any file, then a limit per modality once the bytes are sniffed.
    max_upload_bytes: int = 8 * 1024**3
    max_audio_bytes: int = 2 * 1024**3
    max_image_bytes: int = 100 * 1024**2
    max_video_bytes: int = 8 * 1024**3
    max_document_bytes: int = 200 * 1024**2  # handwriting scans as PDF
    max_chat_bytes: int = 100 * 1024**2
    max_image_pixels: int = 100_000_000  # decompression-bomb guard (Pillow's pixel limit)

    # Quality thresholds: they choose which advice a contributor sees, never refuse.
    quality_min_speech_share: float = 0.3
    quality_min_snr_db: float = 15.0
    quality_max_clipping: float = 0.001
    quality_min_loudness_dbfs: float = -45.0
    quality_min_sharpness: float = 60.0
    quality_min_megapixels: float = 0.3

    # Audit.
    audit_checkpoint_every: int = 1000

    # Counterparty consent: how long an invite link can be answered.
    counterparty_invite_days: int = Field(default=14, ge=1, le=365)

    # Marketplace.
    k_anonymity: int = 5
    platform_fee_bps: int = 2000  # 20.00 % of each sale goes to the platform.
    minimum_price_minor: int = 1
    quote_ttl_seconds: int = Field(default=86400, ge=60, description="How long a quote holds.")
    payment_terms_days: int = Field(default=14, ge=1, description="An invoice is due after.")
    # Who answers for the processing (GDPR Art. 30 records; shown to data subjects).
    controller_name: str = Field(default="fairtrain", max_length=200)
    controller_contact: str | None = Field(default=None, max_length=320)
    dpo_contact: str | None = Field(default=None, max_length=320)
    deletion_deadline_days: int = Field(
        default=30, ge=1, description="Buyers delete withdrawn items within this many days."
    )
    deletion_reminder_days: int = Field(
        default=7, ge=0, description="A licensee is reminded this many days before a deadline."
    )
    deletion_grace_days: int = Field(
        default=14, ge=0, description="An attestation this late suspends the licence."
    )
    webhook_timeout_seconds: float = Field(
        default=5.0, gt=0, le=60, description="How long a webhook receiver has to answer."
    )
    webhook_max_attempts: int = Field(
        default=8, ge=1, le=30, description="Webhook attempts before a delivery is dead-lettered."
    )
    webhook_backoff_seconds: float = Field(
        default=30.0, gt=0, description="First retry delay; it doubles with each attempt."
    )
    contribution_units: dict[str, ContributionUnit] = Field(
        default_factory=lambda: dict(DEFAULT_CONTRIBUTION_UNITS),
        description="Royalty weight unit per modality, as JSON.",
    )

    # Delivery: exports of licences, their signed download links and the rate limit.
    download_link_ttl_seconds: int = Field(
        default=3600, ge=60, le=7 * 86400, description="How long a signed download link works."
    )
    download_requests_per_minute: int = Field(
        default=60, ge=1, description="Download requests per licence per minute, sustained."
    )
    download_burst: int = Field(
        default=120, ge=1, description="Download requests a licence may make back to back."
    )
    watermark_secret: SecretStr | None = Field(
        default=None,
        description="Derives per-licence watermark keys (default: derived from secret_key).",
    )

    # Payouts: who is paid in a batch, and the platform's own account (the debtor).
    payout_minimum_minor: int = Field(default=1000, ge=1)
    payout_debtor_name: str = Field(default="fairtrain", min_length=1, max_length=70)
    payout_debtor_iban: str | None = None
    payout_debtor_bic: str | None = Field(default=None, pattern=r"^[A-Z0-9]{8}([A-Z0-9]{3})?$")

    @field_validator("contribution_units")
    @classmethod
    def _units_cover_every_modality(
        cls, value: dict[str, ContributionUnit]
    ) -> dict[str, ContributionUnit]:
        # An override names the modalities it changes; the others keep their default unit.
        return {**DEFAULT_CONTRIBUTION_UNITS, **value}

    @property
    def is_relaxed(self) -> bool:
        """Demo and dev modes create missing keys instead of refusing to start."""
        return self.mode in (Mode.DEMO, Mode.DEV)

    @property
    def keys_dir(self) -> Path:
        return self.data_dir / "keys"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'fairtrain.db').resolve()}"

    @property
    def effective_vault_url(self) -> str:
        return self.vault_url or (self.data_dir / "vault").resolve().as_uri()

    @property
    def effective_jobs_url(self) -> str:
        return self.jobs_url or f"sqlite:///{(self.data_dir / 'jobs.db').resolve()}"

    @property
    def effective_kek_path(self) -> Path:
        return self.kek_path or self.keys_dir / "kek.b64"

    @property
    def effective_signing_key_path(self) -> Path:
        return self.signing_key_path or self.keys_dir / "platform-ed25519.pem"

    def insecure_reasons(self) -> list[str]:
        """Why this configuration must not serve real users (empty when it may)."""
        if self.is_relaxed:
            return []
        reasons: list[str] = []
        secret = self.secret_key.get_secret_value() if self.secret_key else None
        if secret is None:
            reasons.append("FAIRTRAIN_SECRET_KEY is not set")
        elif secret.strip().lower() in KNOWN_DEFAULT_SECRETS:
            reasons.append("FAIRTRAIN_SECRET_KEY is a well-known default value")
        elif len(secret) < MIN_SECRET_LENGTH:
            reasons.append(f"FAIRTRAIN_SECRET_KEY is shorter than {MIN_SECRET_LENGTH} characters")
        if self.kek_path is None:
            reasons.append("FAIRTRAIN_KEK_PATH is not set (vault key-encryption key)")
        elif not self.kek_path.is_file():
            reasons.append(f"FAIRTRAIN_KEK_PATH points to a missing file: {self.kek_path}")
        if self.signing_key_path is None:
            reasons.append("FAIRTRAIN_SIGNING_KEY_PATH is not set (platform Ed25519 key)")
        elif not self.signing_key_path.is_file():
            reasons.append(
                f"FAIRTRAIN_SIGNING_KEY_PATH points to a missing file: {self.signing_key_path}"
            )
        return reasons


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def reset_settings_cache() -> None:
    get_settings.cache_clear()
