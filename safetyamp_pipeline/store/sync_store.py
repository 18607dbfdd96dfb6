"""`SyncStore`: the one object the pipeline uses to reach the sync store."""

from __future__ import annotations

from safetyamp_pipeline.store.asset_values import AssetValues
from safetyamp_pipeline.store.failures import Failures
from safetyamp_pipeline.store.intents import Intents
from safetyamp_pipeline.store.leases import Leases
from safetyamp_pipeline.store.ledger import Ledger
from safetyamp_pipeline.store.mirror import Mirror
from safetyamp_pipeline.store.rejections import Rejections


class SyncStore(AssetValues, Mirror, Intents, Ledger, Rejections, Failures, Leases):
    """The sync store on one SQLAlchemy URL (SQLite or PostgreSQL).

    `SyncStore(url, schema=None, *, clock=utc_now)`. Tables are created on first use; `schema`
    (PostgreSQL only) puts them in their own schema, created if missing. Every method runs in its
    own transaction; the object is safe to share between threads and each process opens its own.
    """
