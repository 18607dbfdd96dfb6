"""In-memory state of the SafetyAmp emulator: records, indexes, ids, fixture loading, rendering.

Records are stored in a compact form (the GET shape without nested objects; users keep
``current_title_id``, ``role_ids`` and ``site_ids`` instead of ``current_title``/``roles``/``sites``;
clusters keep no ``path``/``depth``). Stored records are never mutated in place (updates replace
the dict), so a shallow copy of the tables is a consistent snapshot for saving.

The compact document (:meth:`SafetyAmpState.compact_document`) is itself a valid fixture, because
fixtures accept the write-only fields besides the GET shape.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ENTITIES = ("users", "sites", "site_clusters", "user_titles", "roles", "asset_types", "assets")

MODEL_NAMES = {
    "users": "User",
    "sites": "Site",
    "site_clusters": "SiteCluster",
    "user_titles": "UserTitle",
    "roles": "Role",
    "asset_types": "AssetType",
    "assets": "Asset",
}

# Stored fields in GET key order (users: refs as ids; nested objects are rendered).
USER_FIELDS = (
    "id",
    "emp_id",
    "first_name",
    "last_name",
    "middle_name",
    "nickname",
    "date_of_birth",
    "current_hire_date",
    "rehire_date",
    "owner",
    "email",
    "work_phone",
    "mobile_phone",
    "extension",
    "home_phone",
    "avatar_location",
    "type",
    "activated",
    "system_access",
    "bypass_sso",
    "gender",
    "street",
    "street2",
    "city",
    "state",
    "zip_code",
    "country",
    "text_opt_out",
    "timezone",
    "home_site_id",
    "last_logged_in",
    "current_title_id",
    "current_department",
    "deleted_at",
    "role_ids",
    "site_ids",
)
USER_DEFAULTS: dict[str, Any] = {
    "owner": False,
    "type": 0,
    "activated": False,
    "system_access": True,
    "bypass_sso": False,
    "text_opt_out": 0,
    "timezone": "America/Chicago",
    "role_ids": [],
    "site_ids": [],
}
SITE_FIELDS = (
    "id",
    "cluster_id",
    "name",
    "street",
    "street2",
    "city",
    "state",
    "zip_code",
    "country",
    "timezone",
    "latitude",
    "longitude",
    "naics_code",
    "industry_description",
    "ext_id",
    "em_enabled",
    "em_weather_override",
    "created_by",
    "created_at",
    "updated_at",
    "updated_by",
    "deleted_at",
    "deleted_by",
)
SITE_DEFAULTS: dict[str, Any] = {"em_enabled": False, "timezone": "America/Chicago"}
CLUSTER_FIELDS = (
    "id",
    "name",
    "parent_cluster_id",
    "external_code",
    "osha_establishment",
    "created_at",
    "updated_at",
    "created_by",
    "updated_by",
    "deleted_at",
    "deleted_by",
)
CLUSTER_DEFAULTS: dict[str, Any] = {"osha_establishment": 0}
TITLE_FIELDS = (
    "id",
    "name",
    "created_at",
    "updated_at",
    "created_by",
    "updated_by",
    "deleted_at",
    "deleted_by",
)
ROLE_FIELDS = (
    "id",
    "account_default",
    "name",
    "default_role_id",
    "scim_external_id",
    "guard_name",
    "created_by",
    "updated_by",
    "created_at",
    "updated_at",
    "deleted_at",
    "deleted_by",
)
ROLE_DEFAULTS: dict[str, Any] = {"account_default": 0, "guard_name": "api"}
ASSET_TYPE_FIELDS = ("id", "name", "site_id", "asset_category_id", "relationships")
ASSET_TYPE_DEFAULTS: dict[str, Any] = {"relationships": []}
ASSET_FIELDS = (
    "id",
    "code",
    "name",
    "description",
    "site_id",
    "location_id",
    "status",
    "serial",
    "model",
    "asset_type_id",
    "created_at",
    "updated_at",
    "deleted_at",
    "created_by",
    "updated_by",
    "current_user_id",
)
ASSET_DEFAULTS: dict[str, Any] = {"status": 1}

STORED_FIELDS: dict[str, tuple[str, ...]] = {
    "users": USER_FIELDS,
    "sites": SITE_FIELDS,
    "site_clusters": CLUSTER_FIELDS,
    "user_titles": TITLE_FIELDS,
    "roles": ROLE_FIELDS,
    "asset_types": ASSET_TYPE_FIELDS,
    "assets": ASSET_FIELDS,
}
DEFAULTS: dict[str, dict[str, Any]] = {
    "users": USER_DEFAULTS,
    "sites": SITE_DEFAULTS,
    "site_clusters": CLUSTER_DEFAULTS,
    "user_titles": {},
    "roles": ROLE_DEFAULTS,
    "asset_types": ASSET_TYPE_DEFAULTS,
    "assets": ASSET_DEFAULTS,
}
HOME_SITE_FIELDS = ("id", "name", "street", "street2", "city", "state", "zip_code", "country")

# ---- user hashids: a bijection of a counter onto 5 base-62 characters (deterministic, restart-safe)
HASHID_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_HASH_SPACE = len(HASHID_ALPHABET) ** 5
_HASH_MULTIPLIER = 387_420_489  # 3**18, coprime with 62**5
_HASH_OFFSET = 123_456_789
_HASH_INVERSE = pow(_HASH_MULTIPLIER, -1, _HASH_SPACE)
_HASH_COUNTER_CEILING = 100_000_000  # decoded values above this are foreign ids (from a fixture)
API_USER_ID_COUNTER = 0  # the API client itself, shown in created_by / updated_by


def hashid(counter: int) -> str:
    value = (counter * _HASH_MULTIPLIER + _HASH_OFFSET) % _HASH_SPACE
    chars = []
    for _ in range(5):
        value, digit = divmod(value, 62)
        chars.append(HASHID_ALPHABET[digit])
    return "".join(reversed(chars))


def decode_hashid(text: str) -> int | None:
    if len(text) != 5 or any(c not in HASHID_ALPHABET for c in text):
        return None
    value = 0
    for c in text:
        value = value * 62 + HASHID_ALPHABET.index(c)
    counter = ((value - _HASH_OFFSET) * _HASH_INVERSE) % _HASH_SPACE
    return counter if counter < _HASH_COUNTER_CEILING else None


API_USER_ID = hashid(API_USER_ID_COUNTER)


def sql_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")


def iso_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class FixtureError(ValueError):
    """A fixture or state file that cannot be loaded; the message names the file and the problem."""


class SafetyAmpState:
    """All records of one tenant, with uniqueness indexes. Guard multi-step use with ``lock``."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.records: dict[str, dict[Any, dict[str, Any]]] = {e: {} for e in ENTITIES}
        self.order: dict[str, list[Any]] = {e: [] for e in ENTITIES}
        self.email_index: dict[str, str] = {}
        self.mobile_index: dict[str, str] = {}
        self.ext_id_index: dict[str, int] = {}
        self.cluster_code_index: dict[str, int] = {}
        self.next_int_id: dict[str, int] = {e: 1 for e in ENTITIES if e != "users"}
        self.next_user_counter = 1

    # ------------------------------------------------------------------ ids
    def new_id(self, entity: str) -> Any:
        if entity == "users":
            while True:
                candidate = hashid(self.next_user_counter)
                self.next_user_counter += 1
                if candidate not in self.records["users"] and candidate != API_USER_ID:
                    return candidate
        value = self.next_int_id[entity]
        self.next_int_id[entity] = value + 1
        return value

    def _note_existing_id(self, entity: str, record_id: Any) -> None:
        if entity == "users":
            counter = decode_hashid(record_id)
            if counter is not None and counter >= self.next_user_counter:
                self.next_user_counter = counter + 1
        elif record_id >= self.next_int_id[entity]:
            self.next_int_id[entity] = record_id + 1

    # ------------------------------------------------------------------ reads
    def get(self, entity: str, record_id: Any) -> dict[str, Any] | None:
        return self.records[entity].get(record_id)

    def page(self, entity: str, offset: int, limit: int) -> list[dict[str, Any]]:
        table = self.records[entity]
        return [table[i] for i in self.order[entity][offset : offset + limit]]

    def all(self, entity: str) -> list[dict[str, Any]]:
        return list(self.records[entity].values())

    def user_id_by_email(self, email: str) -> str | None:
        return self.email_index.get(email.lower())

    # ------------------------------------------------------------------ writes
    def insert(self, entity: str, values: dict[str, Any]) -> dict[str, Any]:
        record = _complete(entity, values)
        record["id"] = self.new_id(entity)
        self._stamp(entity, record, created=True)
        self._put(entity, None, record)
        return record

    def update(self, entity: str, record_id: Any, changes: dict[str, Any]) -> dict[str, Any]:
        old = self.records[entity][record_id]
        record = {**old, **changes}
        self._stamp(entity, record, created=False)
        self._put(entity, old, record)
        return record

    @staticmethod
    def _stamp(entity: str, record: dict[str, Any], *, created: bool) -> None:
        if entity in ("users", "asset_types"):
            return
        now = iso_now() if entity == "roles" else sql_now()
        if created:
            record["created_at"] = now
            record["created_by"] = API_USER_ID
        record["updated_at"] = now
        record["updated_by"] = API_USER_ID

    def _put(self, entity: str, old: dict[str, Any] | None, record: dict[str, Any]) -> None:
        record_id = record["id"]
        if old is None:
            self.order[entity].append(record_id)
        self.records[entity][record_id] = record
        if entity == "users":
            _reindex(self.email_index, old, record, "email", str.lower)
            _reindex(self.mobile_index, old, record, "mobile_phone", None)
        elif entity == "sites":
            _reindex(self.ext_id_index, old, record, "ext_id", None)
        elif entity == "site_clusters":
            _reindex(self.cluster_code_index, old, record, "external_code", None)

    # ------------------------------------------------------------------ clusters
    def cluster_ancestors(self, cluster_id: int) -> list[int]:
        """Ids from the root down to the cluster's parent."""
        chain: list[int] = []
        table = self.records["site_clusters"]
        parent = table[cluster_id]["parent_cluster_id"]
        while parent is not None and parent in table and len(chain) <= len(table):
            chain.append(parent)
            parent = table[parent]["parent_cluster_id"]
        chain.reverse()
        return chain

    def is_cluster_descendant_or_self(self, candidate: int, cluster_id: int) -> bool:
        return candidate == cluster_id or cluster_id in self.cluster_ancestors(candidate)

    def cluster_tree(self) -> list[dict[str, Any]]:
        table = self.records["site_clusters"]
        children: dict[int | None, list[int]] = {}
        for cluster_id in self.order["site_clusters"]:
            children.setdefault(table[cluster_id]["parent_cluster_id"], []).append(cluster_id)

        def node(cluster_id: int) -> dict[str, Any]:
            rendered = self.render("site_clusters", table[cluster_id])
            rendered["children"] = [node(child) for child in children.get(cluster_id, [])]
            return rendered

        return [node(root) for root in children.get(None, [])]

    # ------------------------------------------------------------------ rendering (GET shape)
    def render(self, entity: str, record: dict[str, Any]) -> dict[str, Any]:
        if entity == "users":
            return self._render_user(record)
        if entity == "site_clusters":
            ancestors = self.cluster_ancestors(record["id"])
            path = "/" + "".join(f"{a}/" for a in ancestors)
            rendered = {k: record.get(k) for k in CLUSTER_FIELDS}
            out: dict[str, Any] = {}
            for key, value in rendered.items():
                out[key] = value
                if key == "parent_cluster_id":
                    out["path"] = path
            out["depth"] = len(ancestors)
            return out
        if entity == "assets":
            return self._render_asset(record)
        return dict(record)

    def _render_user(self, record: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in USER_FIELDS:
            if key == "current_title_id":
                out["current_title"] = self._title_ref(record.get("current_title_id"))
            elif key not in ("role_ids", "site_ids"):
                out[key] = record.get(key)
        out["home_site"] = self._home_site(record.get("home_site_id"))
        sites = self.records["sites"]
        roles = self.records["roles"]
        out["sites"] = [dict(sites[i]) for i in record.get("site_ids", []) if i in sites]
        out["roles"] = [dict(roles[i]) for i in record.get("role_ids", []) if i in roles]
        return out

    def _title_ref(self, title_id: int | None) -> dict[str, Any] | None:
        title = self.records["user_titles"].get(title_id) if title_id is not None else None
        return {"id": title["id"], "name": title["name"]} if title else None

    def _home_site(self, site_id: int | None) -> dict[str, Any] | None:
        site = self.records["sites"].get(site_id) if site_id is not None else None
        return {k: site.get(k) for k in HOME_SITE_FIELDS} if site else None

    def _render_asset(self, record: dict[str, Any]) -> dict[str, Any]:
        out = {k: record.get(k) for k in ASSET_FIELDS}
        site = self.records["sites"].get(record.get("site_id"))
        out["site"] = dict(site) if site else None
        location_id = record.get("location_id")
        out["location"] = (
            None
            if location_id is None
            else {
                "id": location_id,
                "site_id": record.get("site_id"),
                "name": None,
                "created_at": None,
                "updated_at": None,
                "created_by": None,
                "updated_by": None,
            }
        )
        asset_type = self.records["asset_types"].get(record.get("asset_type_id"))
        out["asset_type"] = (
            None
            if asset_type is None
            else {
                "id": asset_type["id"],
                "name": asset_type.get("name"),
                "site_id": asset_type.get("site_id"),
                "asset_category_id": asset_type.get("asset_category_id"),
                "templates": [],
            }
        )
        user = self.records["users"].get(record.get("current_user_id"))
        out["current_user"] = None if user is None else self._trimmed_user(user)
        return out

    def _trimmed_user(self, user: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": user["id"],
            "emp_id": user.get("emp_id"),
            "type": user.get("type"),
            "first_name": user.get("first_name"),
            "last_name": user.get("last_name"),
            "current_title": self._title_ref(user.get("current_title_id")),
            "home_site": self._home_site(user.get("home_site_id")),
            "home_site_id": user.get("home_site_id"),
            "nickname": user.get("nickname"),
            "activated": user.get("activated"),
            "owner": user.get("owner"),
            "email": user.get("email"),
            "work_phone": user.get("work_phone"),
            "mobile_phone": user.get("mobile_phone"),
            "avatar_location": user.get("avatar_location"),
            "system_access": user.get("system_access"),
            "deleted_at": user.get("deleted_at"),
        }

    # ------------------------------------------------------------------ documents
    def compact_document(self) -> dict[str, list[dict[str, Any]]]:
        """Shallow snapshot of the stored records (a valid fixture); take it under ``lock``."""
        return {e: list(self.records[e].values()) for e in ENTITIES}

    def rendered_document(self) -> dict[str, list[dict[str, Any]]]:
        """Every record in the GET shape, clusters flat (the fixture file's shape)."""
        with self.lock:
            return {e: [self.render(e, r) for r in self.records[e].values()] for e in ENTITIES}

    @classmethod
    def from_document(cls, document: Any, source: str) -> SafetyAmpState:
        """Load a fixture/state document; raises :class:`FixtureError` naming ``source``."""
        return _FixtureLoader(source).load(document)

    @classmethod
    def from_file(cls, path: Path) -> SafetyAmpState:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise FixtureError(f"{path}: cannot read file: {exc}") from exc
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise FixtureError(f"{path}: not valid JSON: {exc}") from exc
        return cls.from_document(document, str(path))


def _complete(entity: str, values: dict[str, Any]) -> dict[str, Any]:
    defaults = DEFAULTS[entity]
    record: dict[str, Any] = {}
    for key in STORED_FIELDS[entity]:
        if key in values:
            record[key] = values[key]
        else:
            default = defaults.get(key)
            record[key] = list(default) if isinstance(default, list) else default
    return record


def _reindex(
    index: dict[str, Any], old: dict[str, Any] | None, new: dict[str, Any], field: str, fold: Any
) -> None:
    def key_of(record: dict[str, Any] | None) -> str | None:
        value = record.get(field) if record else None
        if value is None or value == "":
            return None
        return fold(value) if fold else value

    old_key, new_key = key_of(old), key_of(new)
    if old_key is not None and old_key != new_key and index.get(old_key) == new["id"]:
        del index[old_key]
    if new_key is not None:
        index[new_key] = new["id"]


class _FixtureLoader:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, problem: str) -> FixtureError:
        return FixtureError(f"{self.source}: {problem}")

    def load(self, document: Any) -> SafetyAmpState:
        if not isinstance(document, dict):
            raise self.fail(
                f"expected a JSON object with keys {', '.join(ENTITIES)}, got {type(document).__name__}"
            )
        unknown = sorted(set(document) - set(ENTITIES))
        if unknown:
            raise self.fail(f"unknown key(s) {', '.join(map(repr, unknown))}; expected {', '.join(ENTITIES)}")
        state = SafetyAmpState()
        pending: dict[str, list[dict[str, Any]]] = {}
        for entity in ENTITIES:
            rows = document.get(entity, [])
            if rows is None:
                rows = []
            if not isinstance(rows, list):
                raise self.fail(f"'{entity}' must be a list, got {type(rows).__name__}")
            if entity == "site_clusters":
                rows = self._flatten_clusters(rows)
            pending[entity] = []
            for index, row in enumerate(rows):
                where = f"{entity}[{index}]"
                if not isinstance(row, dict):
                    raise self.fail(f"{where} must be an object, got {type(row).__name__}")
                record = self._normalize(entity, row, where)
                record_id = record.get("id")
                if record_id is None:
                    pending[entity].append(record)
                    continue
                if record_id in state.records[entity]:
                    raise self.fail(f"{where}: duplicate id {record_id!r}")
                state.records[entity][record_id] = record
                state.order[entity].append(record_id)
                state._note_existing_id(entity, record_id)
        for entity, records in pending.items():
            for record in records:
                record["id"] = state.new_id(entity)
                state.records[entity][record["id"]] = record
                state.order[entity].append(record["id"])
        self._check_references(state)
        self._build_indexes(state)
        return state

    def _flatten_clusters(self, rows: list[Any]) -> list[Any]:
        flat: list[Any] = []

        def visit(row: Any, parent_id: Any) -> None:
            if isinstance(row, dict) and "children" in row:
                children = row["children"] or []
                row = {k: v for k, v in row.items() if k != "children"}
                if parent_id is not None and row.get("parent_cluster_id") is None:
                    row["parent_cluster_id"] = parent_id
                flat.append(row)
                if not isinstance(children, list):
                    raise self.fail(f"site_clusters: 'children' of cluster {row.get('id')!r} must be a list")
                for child in children:
                    visit(child, row.get("id"))
            else:
                flat.append(row)

        for row in rows:
            visit(row, None)
        return flat

    def _normalize(self, entity: str, row: dict[str, Any], where: str) -> dict[str, Any]:
        record_id = row.get("id")
        if record_id is not None:
            if entity == "users":
                if not isinstance(record_id, str) or not record_id.strip():
                    raise self.fail(
                        f"{where}: user id must be a non-empty string (hashid), got {record_id!r}"
                    )
            elif not isinstance(record_id, int) or isinstance(record_id, bool) or record_id < 1:
                raise self.fail(f"{where}: id must be a positive integer, got {record_id!r}")
        values = {k: row[k] for k in STORED_FIELDS[entity] if k in row}
        if entity == "users":
            values["current_title_id"] = self._title_id(row, where)
            values["role_ids"] = self._id_list(row, ("role_ids", "roles"), where)
            values["site_ids"] = self._id_list(row, ("site_ids", "sites"), where)
            if values.get("home_site_id") is None and isinstance(row.get("home_site"), dict):
                values["home_site_id"] = row["home_site"].get("id")
            if isinstance(values.get("system_access"), int):
                values["system_access"] = bool(values["system_access"])
            for key in ("email", "first_name", "last_name"):
                if key in values and values[key] is not None and not isinstance(values[key], str):
                    raise self.fail(f"{where}: '{key}' must be a string, got {values[key]!r}")
        record = _complete(entity, values)
        record["id"] = record_id
        return record

    def _title_id(self, row: dict[str, Any], where: str) -> Any:
        if row.get("current_title_id") is not None:
            return row["current_title_id"]
        title = row.get("current_title")
        if title is None:
            return None
        if not isinstance(title, dict) or "id" not in title:
            raise self.fail(f"{where}: 'current_title' must be an object with an id or null, got {title!r}")
        return title["id"]

    def _id_list(self, row: dict[str, Any], keys: Iterable[str], where: str) -> list[Any]:
        for key in keys:
            if key not in row or row[key] is None:
                continue
            items = row[key]
            if not isinstance(items, list):
                raise self.fail(f"{where}: '{key}' must be a list, got {type(items).__name__}")
            ids = []
            for item in items:
                item_id = item.get("id") if isinstance(item, dict) else item
                if not isinstance(item_id, int) or isinstance(item_id, bool):
                    raise self.fail(
                        f"{where}: '{key}' entries must be ids or objects with an integer id, got {item!r}"
                    )
                ids.append(item_id)
            return ids
        return []

    def _check_references(self, state: SafetyAmpState) -> None:
        r = state.records

        def check(entity: str, field: str, target: str, *, many: bool = False) -> None:
            for index, record_id in enumerate(state.order[entity]):
                record = r[entity][record_id]
                value = record.get(field)
                values = (value or []) if many else [value]
                for v in values:
                    if v is not None and v not in r[target]:
                        raise self.fail(
                            f"{entity}[{index}] (id {record_id!r}): {field} {v!r} does not match any record in '{target}'"
                        )

        check("site_clusters", "parent_cluster_id", "site_clusters")
        check("sites", "cluster_id", "site_clusters")
        check("users", "home_site_id", "sites")
        check("users", "current_title_id", "user_titles")
        check("users", "role_ids", "roles", many=True)
        check("users", "site_ids", "sites", many=True)
        check("asset_types", "site_id", "sites")
        check("assets", "site_id", "sites")
        check("assets", "asset_type_id", "asset_types")
        check("assets", "current_user_id", "users")
        for cluster_id in state.order["site_clusters"]:
            seen = {cluster_id}
            parent = r["site_clusters"][cluster_id]["parent_cluster_id"]
            while parent is not None:
                if parent in seen:
                    raise self.fail(
                        f"site_clusters: cluster {cluster_id} is part of a parent_cluster_id cycle"
                    )
                seen.add(parent)
                parent = r["site_clusters"][parent]["parent_cluster_id"]

    def _build_indexes(self, state: SafetyAmpState) -> None:
        uniques = (
            ("users", "email", state.email_index, str.lower),
            ("users", "mobile_phone", state.mobile_index, None),
            ("sites", "ext_id", state.ext_id_index, None),
            ("site_clusters", "external_code", state.cluster_code_index, None),
        )
        for entity, field, index, fold in uniques:
            for record_id in state.order[entity]:
                value = state.records[entity][record_id].get(field)
                if value is None or value == "":
                    continue
                key = fold(value) if fold else value
                if key in index:
                    raise self.fail(
                        f"{entity}: {field} {value!r} is used by both id {index[key]!r} and id {record_id!r} "
                        "(it must be unique)"
                    )
                index[key] = record_id
