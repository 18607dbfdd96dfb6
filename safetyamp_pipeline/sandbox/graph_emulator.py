"""Microsoft Graph (users) + Entra ID login emulator (external-apis §3), served over HTTPS.

Login routes (what MSAL's ``ConfidentialClientApplication`` client-credentials flow calls with
``authority=https://<host>:<port>/<tenant_id>`` and ``instance_discovery=False``):

* ``GET /{tenant}/v2.0/.well-known/openid-configuration`` - endpoints built from the origin the
  caller used; an unknown tenant gets AAD's 400 ``invalid_tenant``.
* ``POST /{tenant}/oauth2/v2.0/token`` - form fields ``grant_type=client_credentials``,
  ``client_id``, ``client_secret``, ``scope=https://graph.microsoft.com/.default``. Answers
  ``{"token_type": "Bearer", "expires_in", "ext_expires_in", "access_token"}``; a wrong secret is
  401 ``invalid_client`` (AADSTS7000215), errors use AAD's JSON shape.

Access tokens are HMAC-signed (tenant, client, expiry) with a key derived from the app's
credentials, so they stay valid across an emulator restart until they expire.

Graph routes (valid, unexpired bearer token required; Graph's error envelope):

* ``GET /v1.0/users`` - ``$select`` (only the selected properties plus ``id``; ``employeeId`` and
  ``accountEnabled`` only when selected), ``$filter`` (``<property> eq <literal>`` joined by
  ``and``; other operators need advanced query parameters, as on Graph), ``$top`` (1..999,
  default 100) and ``@odata.nextLink`` (an absolute URL carrying every parameter and a
  ``$skiptoken``).
* ``GET /v1.0/users/{id}``.

Throttling: an optional sliding-window limiter (``rate_limit`` requests per ``rate_window`` s per
token) answers 429 ``TooManyRequests`` with ``Retry-After``; the harness's ``burst_429`` fault too.

Admin: ``POST /__sandbox/state`` replaces the users (same shape as ``graph.json``) and writes the
state file.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from safetyamp_pipeline.sandbox.samsara_emulator import write_json_atomically
from safetyamp_pipeline.sandbox.server import Emulator, FaultConfig, SlidingWindowRateLimiter, build_app

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 999
# Returned when no $select is given (Graph's default user properties).
DEFAULT_PROPERTIES = (
    "businessPhones",
    "displayName",
    "givenName",
    "id",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
)
KNOWN_PROPERTIES = DEFAULT_PROPERTIES + (
    "accountEnabled",
    "employeeId",
    "department",
    "companyName",
    "createdDateTime",
    "employeeType",
    "employeeHireDate",
    "otherMails",
    "proxyAddresses",
    "usageLocation",
    "userType",
    "onPremisesSamAccountName",
)
_STRING_OR_NULL_FIELDS = ("employeeId", "mail", "userPrincipalName", "displayName", "givenName", "surname")


class GraphFixtureError(ValueError):
    """A graph.json that cannot be loaded; the message names the file and the problem."""


def validate_document(document: Any, source: str) -> dict[str, list[dict[str, Any]]]:
    """Check a ``{"users": [...]}`` document; raise naming ``source``, the record and the field."""
    if not isinstance(document, dict):
        raise GraphFixtureError(f"{source}: the top level must be a JSON object with 'users'")
    unknown = sorted(set(document) - {"users"})
    if unknown:
        raise GraphFixtureError(f"{source}: unknown key(s) {', '.join(unknown)}; expected 'users'")
    users = document.get("users", [])
    if not isinstance(users, list):
        raise GraphFixtureError(f"{source}: 'users' must be a list, got {type(users).__name__}")
    seen: set[str] = set()
    for index, user in enumerate(users):
        where = f"{source}: users[{index}]"
        if not isinstance(user, dict):
            raise GraphFixtureError(f"{where} must be an object, got {type(user).__name__}")
        user_id = user.get("id")
        if not isinstance(user_id, str) or not user_id:
            raise GraphFixtureError(f"{where}.id must be a non-empty string, got {user_id!r}")
        if user_id in seen:
            raise GraphFixtureError(f"{where}.id {user_id!r} is a duplicate")
        seen.add(user_id)
        for field in _STRING_OR_NULL_FIELDS:
            if field in user and user[field] is not None and not isinstance(user[field], str):
                raise GraphFixtureError(f"{where}.{field} must be a string or null, got {user[field]!r}")
        if "accountEnabled" in user and not isinstance(user["accountEnabled"], bool):
            raise GraphFixtureError(
                f"{where}.accountEnabled must be true or false, got {user['accountEnabled']!r}"
            )
    return {"users": [dict(u) for u in users]}


def load_state_file(path: Path) -> dict[str, list[dict[str, Any]]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise GraphFixtureError(f"{path}: cannot read file: {exc.strerror or exc}") from exc
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise GraphFixtureError(f"{path}: not valid JSON: {exc}") from exc
    return validate_document(document, str(path))


# ---------------------------------------------------------------------------------------------
# Error bodies


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def graph_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    body = {
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": _now_iso(),
                "request-id": str(uuid.uuid4()),
                "client-request-id": str(uuid.uuid4()),
            },
        }
    }
    return JSONResponse(body, status_code=status, headers=headers)


def aad_error(status: int, error: str, code: int, description: str) -> JSONResponse:
    trace_id, correlation_id = str(uuid.uuid4()), str(uuid.uuid4())
    timestamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    return JSONResponse(
        {
            "error": error,
            "error_description": (
                f"AADSTS{code}: {description} Trace ID: {trace_id} Correlation ID: {correlation_id} "
                f"Timestamp: {timestamp}"
            ),
            "error_codes": [code],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
        },
        status_code=status,
    )


# ---------------------------------------------------------------------------------------------
# Query options


class QueryError(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def parse_select(raw: str | None, known: dict[str, str]) -> list[str] | None:
    """Canonical property names to return, ``id`` first; ``None`` = Graph's default set."""
    if raw is None or not raw.strip():
        return None
    names = ["id"]
    for part in raw.split(","):
        name = part.strip()
        if not name:
            continue
        canonical = known.get(name.lower())
        if canonical is None:
            raise QueryError(
                "Request_BadRequest",
                f"Could not find a property named '{name}' on type 'microsoft.graph.user'.",
            )
        if canonical not in names:
            names.append(canonical)
    return names


def _parse_literal(text: str) -> Any:
    lowered = text.lower()
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    if lowered == "null":
        return None
    if len(text) >= 2 and text[0] == text[-1] == "'":
        return text[1:-1].replace("''", "'")
    try:
        return int(text)
    except ValueError:
        raise QueryError("BadRequest", f"Invalid filter clause: syntax error at '{text}'.") from None


def _split_clauses(expression: str) -> list[str]:
    """Split on `` and `` outside quoted strings."""
    clauses, current, quoted, i = [], [], False, 0
    while i < len(expression):
        char = expression[i]
        if char == "'":
            quoted = not quoted
        if not quoted and expression[i : i + 5].lower() == " and ":
            clauses.append("".join(current).strip())
            current, i = [], i + 5
            continue
        current.append(char)
        i += 1
    clauses.append("".join(current).strip())
    return clauses


def parse_filter(raw: str | None, known: dict[str, str]) -> list[tuple[str, Any]]:
    """``[(property, value), ...]`` all of which must be equal; advanced operators are refused."""
    if raw is None or not raw.strip():
        return []
    conditions = []
    for clause in _split_clauses(raw.strip()):
        parts = clause.split(None, 2)
        if len(parts) != 3:
            raise QueryError("BadRequest", f"Invalid filter clause: syntax error in '{clause}'.")
        name, operator, literal = parts
        if operator.lower() in ("ne", "not") or "endswith" in clause.lower():
            raise QueryError(
                "Request_UnsupportedQuery",
                f"Operator '{operator.lower()}' is not supported because the required parameters might be "
                "missing. Try adding $count=true query parameter and ConsistencyLevel:eventual header.",
            )
        if operator.lower() != "eq":
            raise QueryError("Request_UnsupportedQuery", f"Unsupported query: operator '{operator}'.")
        canonical = known.get(name.lower())
        if canonical is None:
            raise QueryError(
                "Request_BadRequest",
                f"Could not find a property named '{name}' on type 'microsoft.graph.user'.",
            )
        conditions.append((canonical, _parse_literal(literal.strip())))
    return conditions


def parse_top(raw: str | None) -> int:
    if raw is None or raw == "":
        return DEFAULT_PAGE_SIZE
    try:
        top = int(raw)
    except ValueError:
        raise QueryError("BadRequest", f"Invalid page size specified: '{raw}'.") from None
    if not 1 <= top <= MAX_PAGE_SIZE:
        raise QueryError(
            "Request_BadRequest",
            f"Invalid page size specified: '{raw}'. Must be between 1 and 999 inclusive.",
        )
    return top


def encode_skiptoken(offset: int) -> str:
    return base64.urlsafe_b64encode(f"sandbox-offset:{offset}".encode()).decode().rstrip("=")


def decode_skiptoken(token: str) -> int:
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        prefix, _, number = text.partition(":")
        offset = int(number)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise QueryError("Request_BadRequest", "Invalid $skiptoken.") from None
    if prefix != "sandbox-offset" or offset < 0:
        raise QueryError("Request_BadRequest", "Invalid $skiptoken.")
    return offset


# ---------------------------------------------------------------------------------------------
# Emulator


class GraphEmulator(Emulator):
    """Graph users + AAD token endpoint for one tenant and one confidential client; ``.app``."""

    def __init__(
        self,
        state_path: Path | str,
        tenant_id: str,
        client_id: str,
        client_secret: str,
        fixture: Path | str | dict[str, Any] | None = None,
        token_lifetime: int = 3600,
        faults: FaultConfig | None = None,
        *,
        rate_limit: int | None = None,
        rate_window: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        limiter = SlidingWindowRateLimiter(rate_limit, rate_window) if rate_limit else None
        super().__init__("graph", rate_limiter=limiter, faults=faults)
        self.state_path = Path(state_path)
        self.tenant_id = tenant_id
        self.client_id = client_id
        self._client_secret = client_secret
        self.token_lifetime = token_lifetime
        self._clock = clock
        self._signing_key = hashlib.sha256(f"{tenant_id}\0{client_id}\0{client_secret}".encode()).digest()
        self._lock = threading.Lock()
        self._users: list[dict[str, Any]] = []
        self._known: dict[str, str] = {}
        self.tokens_issued = 0
        if self.state_path.exists():
            document = load_state_file(self.state_path)
        elif isinstance(fixture, dict):
            document = validate_document(fixture, "fixture")
        elif fixture is not None and Path(fixture).exists():
            document = load_state_file(Path(fixture))
        else:
            document = {"users": []}
        self._replace(document, persist=not self.state_path.exists())
        self.app = build_app(self, self._api_routes() + self._admin_routes())

    # ------------------------------------------------------------------ state
    def _replace(self, document: dict[str, list[dict[str, Any]]], *, persist: bool = True) -> None:
        known = {name.lower(): name for name in KNOWN_PROPERTIES}
        for user in document["users"]:
            for name in user:
                known.setdefault(name.lower(), name)
        with self._lock:
            self._users = document["users"]
            self._known = known
            if persist:
                self.state_path.parent.mkdir(parents=True, exist_ok=True)
                write_json_atomically(self.state_path, {"users": self._users})

    def state(self) -> dict[str, Any]:
        with self._lock:
            return {"users": [dict(u) for u in self._users]}

    def _known_properties(self) -> dict[str, str]:
        """Lower-case name -> canonical name of every selectable/filterable property."""
        with self._lock:
            return self._known

    # ------------------------------------------------------------------ tokens
    def issue_token(self) -> str:
        claims = {"tid": self.tenant_id, "appid": self.client_id, "exp": self._clock() + self.token_lifetime}
        payload = (
            base64.urlsafe_b64encode(json.dumps(claims, separators=(",", ":")).encode()).decode().rstrip("=")
        )
        signature = hmac.new(self._signing_key, payload.encode(), hashlib.sha256).hexdigest()
        self.tokens_issued += 1
        return f"sandbox.{payload}.{signature}"

    def token_problem(self, token: str) -> str | None:
        """Why ``token`` is not acceptable, or ``None`` when it is valid and unexpired."""
        prefix, _, rest = token.partition(".")
        payload, _, signature = rest.partition(".")
        expected = hmac.new(self._signing_key, payload.encode(), hashlib.sha256).hexdigest()
        if prefix != "sandbox" or not hmac.compare_digest(signature, expected):
            return "Invalid access token: signature validation failed."
        try:
            claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            expires = float(claims["exp"])
        except (binascii.Error, ValueError, KeyError, TypeError):
            return "Invalid access token: malformed claims."
        if expires <= self._clock():
            return "Lifetime validation failed, the token is expired."
        return None

    # ------------------------------------------------------------------ harness hooks
    def authenticate(self, request: Request) -> Response | None:
        if not request.url.path.startswith("/v1.0/"):
            return None  # login routes authenticate with the client secret instead
        auth = request.headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return graph_error(401, "InvalidAuthenticationToken", "Access token is empty.")
        problem = self.token_problem(token.strip())
        if problem:
            return graph_error(401, "InvalidAuthenticationToken", problem)
        return None

    def too_many_requests_response(self) -> Response:
        return graph_error(
            429, "TooManyRequests", "Too many requests. Please retry after the delay in Retry-After."
        )

    def fault_response(self, status: int) -> Response:
        return graph_error(
            status,
            "serviceNotAvailable" if status == 503 else "generalException",
            f"Injected fault ({status}).",
        )

    # ------------------------------------------------------------------ routes
    def _api_routes(self) -> list[Route]:
        return [
            Route(
                "/{tenant}/v2.0/.well-known/openid-configuration", self._openid_configuration, methods=["GET"]
            ),
            Route("/{tenant}/oauth2/v2.0/token", self._token, methods=["POST"]),
            Route("/v1.0/users", self._list_users, methods=["GET"]),
            Route("/v1.0/users/{id}", self._get_user, methods=["GET"]),
        ]

    def _admin_routes(self) -> list[Route]:
        return [Route("/__sandbox/state", self._replace_state, methods=["POST"])]

    @staticmethod
    def _origin(request: Request) -> str:
        return f"{request.url.scheme}://{request.url.netloc}"

    async def _openid_configuration(self, request: Request) -> Response:
        tenant = request.path_params["tenant"]
        if tenant != self.tenant_id:
            return aad_error(
                400,
                "invalid_tenant",
                90002,
                f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID.",
            )
        base = f"{self._origin(request)}/{tenant}"
        return JSONResponse(
            {
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "private_key_jwt",
                    "client_secret_basic",
                ],
                "jwks_uri": f"{base}/discovery/v2.0/keys",
                "response_modes_supported": ["query", "fragment", "form_post"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "issuer": f"{base}/v2.0",
                "request_uri_parameter_supported": False,
                "userinfo_endpoint": f"{self._origin(request)}/oidc/userinfo",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                "http_logout_supported": True,
                "frontchannel_logout_supported": True,
                "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
                "claims_supported": ["sub", "iss", "aud", "exp", "iat", "tid", "ver"],
                "tenant_region_scope": "NA",
                "cloud_instance_name": "microsoftonline.com",
            }
        )

    async def _token(self, request: Request) -> Response:
        tenant = request.path_params["tenant"]
        if tenant != self.tenant_id:
            return aad_error(400, "invalid_request", 90002, f"Tenant '{tenant}' not found.")
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()}
        client_id, secret = form.get("client_id"), form.get("client_secret")
        basic = request.headers.get("authorization", "")
        if basic[:6].lower() == "basic ":  # client_secret_basic
            try:
                client_id, _, secret = base64.b64decode(basic[6:]).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return aad_error(401, "invalid_client", 7000216, "Malformed client credentials.")
        grant = form.get("grant_type")
        if grant != "client_credentials":
            return aad_error(
                400,
                "unsupported_grant_type",
                70003,
                f"The app requested an unsupported grant type '{grant}'.",
            )
        if not client_id:
            return aad_error(
                400,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'client_id'.",
            )
        if client_id != self.client_id:
            return aad_error(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory '{tenant}'.",
            )
        if not secret:
            return aad_error(
                401,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            )
        if not hmac.compare_digest(secret.encode(), self._client_secret.encode()):
            return aad_error(
                401,
                "invalid_client",
                7000215,
                f"Invalid client secret provided. Ensure the secret being sent in the request is the client "
                f"secret value, not the client secret ID, for a secret added to app '{client_id}'.",
            )
        scopes = (form.get("scope") or "").split()
        if scopes != [GRAPH_SCOPE]:
            return aad_error(
                400,
                "invalid_scope",
                1002012,
                f"The provided value for scope {' '.join(scopes) or '(none)'} is not valid. Client credential "
                "flows must have a scope value with /.default suffixed to the resource identifier.",
            )
        return JSONResponse(
            {
                "token_type": "Bearer",
                "expires_in": self.token_lifetime,
                "ext_expires_in": self.token_lifetime,
                "access_token": self.issue_token(),
            },
            headers={"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"},
        )

    def _render(self, user: dict[str, Any], select: list[str] | None) -> dict[str, Any]:
        names = select if select is not None else DEFAULT_PROPERTIES
        rendered: dict[str, Any] = {}
        for name in names:
            default: Any = [] if name in ("businessPhones", "otherMails", "proxyAddresses") else None
            rendered[name] = user.get(name, default)
        return rendered

    @staticmethod
    def _context(origin: str, select: list[str] | None, single: bool = False) -> str:
        suffix = f"({','.join(select)})" if select else ""
        return f"{origin}/v1.0/$metadata#users{suffix}{'/$entity' if single else ''}"

    async def _list_users(self, request: Request) -> Response:
        params = request.query_params
        known = self._known_properties()
        try:
            select = parse_select(params.get("$select"), known)
            conditions = parse_filter(params.get("$filter"), known)
            top = parse_top(params.get("$top"))
            skiptoken = params.get("$skiptoken")
            offset = decode_skiptoken(skiptoken) if skiptoken else 0
        except QueryError as exc:
            return graph_error(400, exc.code, str(exc))
        with self._lock:
            matching = [u for u in self._users if all(u.get(name) == value for name, value in conditions)]
        page = matching[offset : offset + top]
        origin = self._origin(request)
        body: dict[str, Any] = {"@odata.context": self._context(origin, select)}
        next_offset = offset + len(page)
        if next_offset < len(matching):
            query = {k: v for k, v in params.items() if k != "$skiptoken"}
            query["$top"] = str(top)
            query["$skiptoken"] = encode_skiptoken(next_offset)
            body["@odata.nextLink"] = f"{origin}/v1.0/users?" + urlencode(query, quote_via=quote, safe="$,'")
        body["value"] = [self._render(u, select) for u in page]
        return JSONResponse(body)

    async def _get_user(self, request: Request) -> Response:
        wanted = request.path_params["id"]
        try:
            select = parse_select(request.query_params.get("$select"), self._known_properties())
        except QueryError as exc:
            return graph_error(400, exc.code, str(exc))
        with self._lock:
            found = next(
                (u for u in self._users if u["id"] == wanted or u.get("userPrincipalName") == wanted), None
            )
        if found is None:
            return graph_error(
                404,
                "Request_ResourceNotFound",
                f"Resource '{wanted}' does not exist or one of its "
                "queried reference-property objects are not present.",
            )
        body = {"@odata.context": self._context(self._origin(request), select, single=True)}
        body.update(self._render(found, select))
        return JSONResponse(body)

    async def _replace_state(self, request: Request) -> Response:
        try:
            document = validate_document(json.loads(await request.body() or b"null"), "state")
        except ValueError as exc:
            return JSONResponse({"message": str(exc)}, status_code=400)
        self._replace(document)
        return JSONResponse(self.state())
