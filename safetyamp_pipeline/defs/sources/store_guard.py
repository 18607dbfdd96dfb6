"""Store access inside source and desired assets: a failure fails the step with a clear message.

The SQLAlchemy error is never chained into the step failure: its text quotes the statement's
parameters, and asset rows hold person data. A missing upstream value says which asset to
materialize first.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
from sqlalchemy.exc import SQLAlchemyError

from safetyamp_pipeline.store.errors import MissingAssetValue, StoreError
from safetyamp_pipeline.sync.masking import mask_text


def store_failure(asset: str, exc: BaseException) -> dg.Failure:
    original = exc if isinstance(exc, StoreError) else (getattr(exc, "orig", None) or exc)
    first_line = (str(original).strip().splitlines() or [""])[0]
    return dg.Failure(
        description=f"The sync store failed during {asset} ({type(original).__name__}: "
        f"{mask_text(first_line)[:300]}). No value of this run was accepted; re-run once the store answers."
    )


@contextmanager
def guarded_store(asset: str) -> Iterator[None]:
    """Wrap the store calls (only those: a Vista SQL error is not a store error) of one asset."""
    try:
        yield
    except MissingAssetValue as exc:
        raise dg.Failure(description=f"{asset}: {exc}") from None
    except (SQLAlchemyError, StoreError) as exc:
        raise store_failure(asset, exc) from None
