"""The sync store: asset values, SafetyAmp mirror, create intents, ledger and failures (SQL)."""

from safetyamp_pipeline.store.asset_values import AssetValueError
from safetyamp_pipeline.store.codec import StoreJSONEncoder, json_default
from safetyamp_pipeline.store.errors import (
    MissingAssetValue,
    StoreError,
    StoreSchemaTooNew,
    StoreUnavailable,
)
from safetyamp_pipeline.store.failures import FAILURE_KINDS
from safetyamp_pipeline.store.ledger import LEDGER_STATUSES
from safetyamp_pipeline.store.sync_store import SyncStore
from safetyamp_pipeline.store.urls import default_store_url, mask_url

__all__ = [
    "FAILURE_KINDS",
    "LEDGER_STATUSES",
    "AssetValueError",
    "MissingAssetValue",
    "StoreError",
    "StoreJSONEncoder",
    "StoreSchemaTooNew",
    "StoreUnavailable",
    "SyncStore",
    "default_store_url",
    "json_default",
    "mask_url",
]
