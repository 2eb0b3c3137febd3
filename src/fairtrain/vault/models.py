"""Vault tables: contributors' wrapped data keys and the blobs sealed with them.

The rows hold no plaintext and no unwrapped key: a blob row says where the ciphertext is
and what its plaintext must hash to; a key row holds the data key wrapped by the KEK, and
nothing at all once the contributor has been shredded.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, Index, LargeBinary, String, text
from sqlalchemy.orm import Mapped, mapped_column

from fairtrain.db import Base, UTCDateTime

__all__ = ["BlobState", "ContributorKey", "VaultBlob"]


class BlobState(StrEnum):
    STORED = "stored"
    # Removed on request (a refused upload, a merged resumable upload); the object is
    # deleted from storage once the deleting transaction has committed.
    DELETED = "deleted"
    # The owner's data key was destroyed: the ciphertext may remain (and in backups) but
    # nobody can read it any more.
    SHREDDED = "shredded"


class ContributorKey(Base):
    __tablename__ = "vault_contributor_keys"
    __table_args__ = (
        # One live data key per owner; a shredded owner who comes back gets a fresh one.
        Index(
            "uq_vault_contributor_keys_live_owner",
            "owner",
            unique=True,
            sqlite_where=text("destroyed_at IS NULL"),
            postgresql_where=text("destroyed_at IS NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    owner: Mapped[str] = mapped_column(String(80), index=True)
    # nonce || AES-GCM(KEK, data key); NULL once destroyed.
    wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary(128))
    kek_id: Mapped[str | None] = mapped_column(String(32), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    destroyed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class VaultBlob(Base):
    __tablename__ = "vault_blobs"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    owner: Mapped[str] = mapped_column(String(80), index=True)
    key_id: Mapped[str] = mapped_column(ForeignKey("vault_contributor_keys.id"), index=True)
    storage_key: Mapped[str] = mapped_column(String(255), unique=True)
    sha256: Mapped[str] = mapped_column(String(64))
    plaintext_size: Mapped[int] = mapped_column(BigInteger)
    ciphertext_size: Mapped[int] = mapped_column(BigInteger)
    media_type: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    state: Mapped[BlobState] = mapped_column(String(16), default=BlobState.STORED, index=True)
