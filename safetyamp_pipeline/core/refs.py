"""Natural keys of SafetyAmp records and the index that resolves them to SafetyAmp ids."""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, TypeGuard

from .models import Record, RecordId
from .normalize import (
    CODE_MAX,
    as_int,
    asset_key,
    canonical_emp_id,
    clean_text,
    email_key,
    normalize_phone,
    title_key,
)
from .perf import without_gc
from .settings import SyncSettings


def natural_key(entity: str, record: object) -> str | None:
    """The natural key of a SafetyAmp record (None when it has none and so is not ours to manage).

    cluster: external_code (the root, parent_cluster_id None: its name); site: trimmed ext_id;
    title: case-folded, whitespace-collapsed name; user: canonical emp_id; asset: serial.
    """
    if not isinstance(record, Mapping):
        return None
    keyer = _NATURAL_KEYS.get(entity)
    return keyer(record) if keyer is not None else None


def _cluster_key(record: Record) -> str | None:
    if record.get("parent_cluster_id") is None:
        return clean_text(record.get("name"))
    return clean_text(record.get("external_code"), CODE_MAX)


_NATURAL_KEYS: dict[str, Callable[[Record], str | None]] = {
    "site_clusters": _cluster_key,
    "sites": lambda record: clean_text(record.get("ext_id"), CODE_MAX),
    "user_titles": lambda record: title_key(record.get("name")),
    "users": lambda record: canonical_emp_id(record.get("emp_id")),
    "assets": lambda record: asset_key(record.get("serial")),
}


@lru_cache(maxsize=262144)
def index_key(entity: str, key: str | None) -> str | None:
    """Form of a natural key used for lookups: case-insensitive like SafetyAmp's unique checks."""
    if key is None:
        return None
    if entity == "users":
        canonical = canonical_emp_id(key)
        return canonical.casefold() if canonical else None
    if entity == "user_titles":
        return title_key(key)
    if entity == "assets":
        return asset_key(key)
    text = clean_text(key, CODE_MAX if entity != "site_clusters" else 255)
    return text.casefold() if text else None


def _id_order(record: Mapping[str, Any]) -> tuple[int, int | str]:
    rid = record.get("id")
    if type(rid) is int:
        return (0, rid)
    if type(rid) is str and rid.isascii() and rid.isalnum() and not rid.isdigit():
        return (1, rid)  # a user hashid: letters in it, so never a number
    number = as_int(rid)
    return (0, number) if number is not None else (1, str(rid))


def _is_live(record: object) -> TypeGuard[Record]:
    """A usable SafetyAmp record: a mapping with an int/str id, not soft-deleted."""
    if type(record) is not dict and not isinstance(record, Mapping):
        return False
    rid = record.get("id")
    kind = type(rid)
    if kind is not int and kind is not str and (not isinstance(rid, int | str) or isinstance(rid, bool)):
        return False
    return not record.get("deleted_at")


@dataclass(frozen=True)
class DuplicateKey:
    """Several live SafetyAmp records share one natural key (left by the old service): the sync
    uses `kept_id` (the lowest id) for the key and leaves `duplicate_ids` alone."""

    entity: str
    key: str
    kept_id: RecordId
    duplicate_ids: tuple[RecordId, ...]


def duplicate_keys(entity: str, records: Iterable[object]) -> list[DuplicateKey]:
    """Natural keys held by more than one live record of `entity`, sorted by key; independent of
    the order the API listed the records in. The same lowest-id choice as the planners and RefIndex."""
    groups: dict[str, list[Record]] = {}
    for record in records or ():
        if _is_live(record):
            key = index_key(entity, natural_key(entity, record))
            if key is not None:
                groups.setdefault(key, []).append(record)
    out = []
    for key in sorted(groups):
        group = sorted(groups[key], key=_id_order)
        if len(group) > 1:
            kept = group[0]
            out.append(DuplicateKey(entity, natural_key(entity, kept) or key, kept["id"], tuple(r["id"] for r in group[1:])))
    return out


class RefIndex:
    """Resolves natural keys to SafetyAmp records and ids. When several records share a key, the
    lowest id wins (stable across runs)."""

    def __init__(self, settings: SyncSettings | None = None) -> None:
        self.settings = settings or SyncSettings()
        self.by_key: dict[str, dict[str, Record]] = {
            e: {} for e in ("site_clusters", "sites", "user_titles", "users", "assets")
        }
        self.roles_by_name: dict[str, Record] = {}
        self.asset_types: list[Record] = []
        self.sites_by_name: dict[str, Record] = {}
        self.unkeyed_sites_by_name: dict[str, Record] = {}
        self.unkeyed_clusters_by_name: dict[str, Record] = {}
        self.office_site_by_cluster: dict[int, Record] = {}
        self.users_by_id: dict[RecordId, Record] = {}
        # email key / mobile -> user ids (possibly stale: readers re-check the holder's record).
        # Built on first use: only the users plan needs them, and normalizing every user's phone
        # for the other plans (assets resolve drivers through users_by_key) is wasted work.
        self._users_by_email: dict[str, list[RecordId]] = {}
        self._users_by_mobile: dict[str, list[RecordId]] = {}
        self._contacts_indexed = False
        # from_state learns users unsorted (no 16k-record sort per plan); the id order that
        # learning in order gave users_by_id (which holder is named first) is restored on first need
        self._users_in_id_order = True
        # entity -> the live records from_state indexed, while nothing was learned since: a plan
        # over the same records reuses the key table instead of re-keying 20k users.
        self._built_from: dict[str, list[Record]] = {}
        # entity -> (the state list `_built_from` was filtered from, its items then)
        self._built_from_raw: dict[str, tuple[object, tuple[object, ...]]] = {}

    @classmethod
    @without_gc
    def from_state(cls, state: Mapping[str, Iterable[object]] | None, settings: SyncSettings | None = None) -> RefIndex:
        index = cls(settings)
        state = state or {}
        for entity in ("site_clusters", "sites", "user_titles", "users", "assets"):
            raw = state.get(entity)
            live = [r for r in raw or () if _is_live(r)]
            index._built_from[entity] = live
            index._built_from_raw[entity] = (raw, tuple(raw or ()))
            # users: no name tables, so no sort (16k records) - a shared key is settled by id below
            index._learn_all(entity, live if entity == "users" else sorted(live, key=_id_order))
        for role in state.get("roles") or ():
            if _is_live(role):
                name = clean_text(role.get("name"))
                if name:
                    index.roles_by_name.setdefault(name.casefold(), role)
        index.asset_types = sorted((t for t in state.get("asset_types") or () if _is_live(t)), key=_id_order)
        return index

    def _learn_all(self, entity: str, ordered: list[Record]) -> None:
        """learn(replace=False) for live records in id order, in bulk (20k users per plan); users
        may come in any order."""
        keyer = _NATURAL_KEYS[entity]
        keys = [index_key(entity, keyer(record)) for record in ordered]
        table = self.by_key[entity]
        for key, record in zip(keys, ordered, strict=True):
            if key is not None:
                old = table.get(key)
                if old is None or _id_order(record) < _id_order(old):
                    table[key] = record  # the lowest id keeps a shared key (the first of equal ids)
        if entity == "sites":
            for key, record in zip(keys, ordered, strict=True):
                self._learn_site(record, key)
        elif entity == "site_clusters":
            for key, record in zip(keys, ordered, strict=True):
                if key is None:
                    name = clean_text(record.get("name"))
                    if name:
                        self.unkeyed_clusters_by_name.setdefault(name.casefold(), record)
        elif entity == "users":
            if self._contacts_indexed:
                for record in ordered:
                    self._learn_user(record)
            else:  # `_learn_user` in bulk
                self._order_users()
                self.users_by_id.update([(record["id"], record) for record in ordered])
            self._users_in_id_order = False

    def learn(self, entity: str, record: Record, replace: bool = True) -> None:
        """Add (or, after a write, refresh) one record. The record is indexed, not copied: callers
        replace records rather than mutate them."""
        if not _is_live(record):
            return
        if replace:
            self._built_from.pop(entity, None)
        key = index_key(entity, natural_key(entity, record))
        table = self.by_key.get(entity)
        if table is not None and key is not None:
            old = table.get(key)
            if old is None or replace and old.get("id") == record.get("id") or (replace and _id_order(record) < _id_order(old)):
                table[key] = record
        if entity == "sites":
            self._learn_site(record, key)
        elif entity == "site_clusters" and key is None:
            name = clean_text(record.get("name"))
            if name:
                self.unkeyed_clusters_by_name.setdefault(name.casefold(), record)
        elif entity == "users":
            self._learn_user(record)

    def _learn_site(self, record: Record, key: str | None) -> None:
        name = clean_text(record.get("name"))
        if name:
            self.sites_by_name.setdefault(name.casefold(), record)
            if key is None:
                self.unkeyed_sites_by_name.setdefault(name.casefold(), record)
        cluster = as_int(record.get("cluster_id"))
        if cluster is not None:
            current = self.office_site_by_cluster.get(cluster)
            if current is None or _id_order(record) < _id_order(current):
                self.office_site_by_cluster[cluster] = record

    def _learn_user(self, record: Record) -> None:
        self._order_users()
        user_id: RecordId = record["id"]
        self.users_by_id[user_id] = record
        if self._contacts_indexed:
            self._index_contacts(user_id, record)

    def _index_contacts(self, user_id: RecordId, record: Record) -> None:
        email = email_key(record.get("email"))
        if email:
            self._users_by_email.setdefault(email, []).append(user_id)
        mobile = normalize_phone(record.get("mobile_phone"))
        if mobile:
            self._users_by_mobile.setdefault(mobile, []).append(user_id)

    def _ensure_contacts(self) -> None:
        if not self._contacts_indexed:
            self._order_users()
            self._contacts_indexed = True
            for user_id, record in self.users_by_id.items():
                self._index_contacts(user_id, record)

    def _order_users(self) -> None:
        if not self._users_in_id_order:
            self._users_in_id_order = True
            self.users_by_id = dict(sorted(self.users_by_id.items(), key=lambda item: _id_order(item[1])))

    @property
    def users_by_email(self) -> dict[str, list[RecordId]]:
        self._ensure_contacts()
        return self._users_by_email

    @property
    def users_by_mobile(self) -> dict[str, list[RecordId]]:
        self._ensure_contacts()
        return self._users_by_mobile

    def live_if_from(self, entity: str, records: object) -> list[Record] | None:
        """The live records `from_state` filtered out of exactly this `records` object, while nothing
        was learned since (a plan over the state the index was built from skips filtering again)."""
        raw, items = self._built_from_raw.get(entity, (None, ()))
        if records is None or raw is not records or not isinstance(records, list | tuple):
            return None
        # the same list, holding the same objects (not appended to or replaced since)
        if len(records) != len(items) or not all(map(operator.is_, records, items)):
            return None
        return self._built_from.get(entity)

    def keyed_if_same(self, entity: str, live: list[Record]) -> dict[str, Record] | None:
        """A copy of the key table of `entity` when it was built from exactly these live records
        (the same objects, in the same order) and nothing was learned since; else None."""
        source = self._built_from.get(entity)
        if source is None or len(source) != len(live) or any(a is not b for a, b in zip(source, live, strict=True)):
            return None
        return dict(self.by_key[entity])

    # ---------------------------------------------------------------- lookups

    def record(self, entity: str, key: str | None) -> Record | None:
        return self.by_key.get(entity, {}).get(index_key(entity, key) or "")

    def id_of(self, entity: str, key: str | None) -> RecordId | None:
        record = self.record(entity, key)
        return record.get("id") if record else None

    def region_office_site_id(self, region: str | None) -> int | None:
        """The site attached directly to the region cluster (lowest id when several)."""
        cluster_id = as_int(self.id_of("site_clusters", region))
        if cluster_id is None:
            return None
        site = self.office_site_by_cluster.get(cluster_id)
        return as_int(site.get("id")) if site else None

    def role_id(self, name: str | None) -> RecordId | None:
        text = clean_text(name)
        role = self.roles_by_name.get(text.casefold()) if text else None
        return role.get("id") if role else None

    def site_by_name(self, name: str | None) -> Record | None:
        text = clean_text(name)
        return self.sites_by_name.get(text.casefold()) if text else None

    def vehicle_asset_type(self) -> Record | None:
        """The configured vehicle asset type, preferring the one scoped to the configured site."""
        wanted = (clean_text(self.settings.vehicle_asset_type_name) or "").casefold()
        matches = [t for t in self.asset_types if (clean_text(t.get("name")) or "").casefold() == wanted]
        site = self.site_by_name(self.settings.vehicle_site_name)
        if site is not None:
            for asset_type in matches:
                if as_int(asset_type.get("site_id")) == as_int(site.get("id")):
                    return asset_type
        return matches[0] if matches else None

    def other_email_holder(self, email: object, user_id: RecordId | None) -> Record | None:
        key = email_key(email)
        for holder_id in self.users_by_email.get(key or "", ()):
            holder = self.users_by_id.get(holder_id)
            if holder_id != user_id and holder and email_key(holder.get("email")) == key:
                return holder
        return None

    def other_mobile_holder(self, phone: object, user_id: RecordId | None) -> Record | None:
        key = normalize_phone(phone)
        for holder_id in self.users_by_mobile.get(key or "", ()):
            holder = self.users_by_id.get(holder_id)
            if holder_id != user_id and holder and normalize_phone(holder.get("mobile_phone")) == key:
                return holder
        return None
