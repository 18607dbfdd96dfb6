"""Errors raised by the sync store."""

from __future__ import annotations


class StoreError(Exception):
    """Base class of the sync store's errors."""


class MissingAssetValue(StoreError, LookupError):
    """No stored value for an asset (and partition): it was never materialized into this store."""

    def __init__(self, asset_key: str, partitions: list[str | None] | None = None) -> None:
        self.asset_key = asset_key
        self.partitions = partitions or [None]
        named = [p for p in self.partitions if p is not None]
        where = f"partition(s) {', '.join(named)}" if named else "its unpartitioned value"
        super().__init__(f"asset {asset_key!r} has no stored value for {where}; materialize it first")


class StoreUnavailable(StoreError):
    """The store's database cannot be reached or opened. The message names the URL with its
    password masked."""


class StoreSchemaTooNew(StoreError):
    """The database was created by a newer version of the pipeline than this one."""
