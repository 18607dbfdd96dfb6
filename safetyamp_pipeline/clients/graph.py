"""Microsoft Graph client for Entra ID users (plain Python; the Dagster resource wraps it).

Tokens come from MSAL's `ConfidentialClientApplication` (client-credentials flow). MSAL caches the
token and fetches a new one when it is about to expire, so `acquire_token_for_client` is called
before every page. The authority is `<authority_host>/<tenant_id>` with `instance_discovery=False`
(MSAL then reads that host's own OpenID configuration and never calls login.microsoftonline.com
for discovery). `ca_bundle` is passed to MSAL (`verify=`) and to the Graph session, so both trust
a private CA such as the sandbox's.

`list_users()` asks for `$select=id,employeeId,mail,userPrincipalName,accountEnabled` and
`$top=999`, then follows `@odata.nextLink` verbatim until it is absent. The next link must stay
on the Graph origin (the bearer token is never sent elsewhere).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import requests

from safetyamp_pipeline.clients.errors import ConfigError, MalformedResponse, TokenError
from safetyamp_pipeline.clients.http import (
    HttpTransport,
    PinnedCASession,
    Redactor,
    RequestStats,
    RetryPolicy,
)
from safetyamp_pipeline.clients.safetyamp import origin_of

DEFAULT_SCOPE = "https://graph.microsoft.com/.default"
USER_FIELDS = ("id", "employeeId", "mail", "userPrincipalName", "accountEnabled")
USERS_ROUTE = "/v1.0/users"
_MAX_PAGES = 10_000

_log = logging.getLogger(__name__)


class GraphClient:
    def __init__(
        self,
        tenant_id: str,
        client_id: str,
        client_secret: str,
        *,
        authority_host: str = "https://login.microsoftonline.com",
        graph_url: str = "https://graph.microsoft.com",
        ca_bundle: str | None = None,
        timeout: tuple[float, float] = (5, 30),
        scope: str = DEFAULT_SCOPE,
        page_size: int = 999,
        max_retries: int = 4,
        max_total_wait: float = 120,
        logger: logging.Logger | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        for setting, value in (
            ("MS_GRAPH_TENANT_ID", tenant_id),
            ("MS_GRAPH_CLIENT_ID", client_id),
            ("MS_GRAPH_CLIENT_SECRET", client_secret),
        ):
            if not value:
                raise ConfigError(f"Graph setting {setting} is not set")
        self.tenant_id = tenant_id
        self.client_id = client_id
        self._client_secret = client_secret
        self.authority = f"{origin_of(authority_host, 'MS_GRAPH_AUTHORITY_HOST')}/{tenant_id}"
        self.graph_url = origin_of(graph_url, "MS_GRAPH_API_URL")
        self.scope = scope
        self.ca_bundle = ca_bundle
        self.timeout = timeout
        self.page_size = page_size
        self.log = logger or _log
        self._redact = Redactor([client_secret])
        self.session = session or PinnedCASession(timeout=timeout)
        if ca_bundle:
            self.session.verify = ca_bundle
        self.session.headers.update({"Accept": "application/json", "User-Agent": "safetyamp-pipeline"})
        self._http = HttpTransport(
            service="Graph",
            session=self.session,
            timeout=timeout,
            policy=RetryPolicy(max_retries=max_retries, max_total_wait=max_total_wait),
            bucket=None,  # Graph's limits are far above this workload; 429s are still honoured
            redact=self._redact,
            logger=self.log,
            sleep=sleep,
            rng=rng,
        )
        self._app: Any = None

    @property
    def stats(self) -> RequestStats:
        return self._http.stats

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> GraphClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _who(self) -> str:
        return f"client {self.client_id} in tenant {self.tenant_id} at {self.authority}"

    def _msal_app(self) -> Any:
        if self._app is None:
            import msal  # imported here: only the Graph source needs it

            try:
                self._app = msal.ConfidentialClientApplication(
                    self.client_id,
                    client_credential=self._client_secret,
                    authority=self.authority,
                    instance_discovery=False,
                    # msal accepts a CA bundle path at run time; its annotation says bool.
                    verify=self.ca_bundle or True,  # pyright: ignore[reportArgumentType]
                    timeout=self.timeout,
                    http_client=self.session,
                )
            except Exception as exc:  # MSAL raises ValueError/requests errors from discovery
                raise TokenError(
                    self._redact(
                        f"Graph: could not set up the token client for {self._who()}: "
                        f"{type(exc).__name__}: {exc}"
                    )
                ) from None
        return self._app

    def access_token(self) -> str:
        """A valid access token (MSAL serves it from its cache until it nears expiry)."""
        app = self._msal_app()
        try:
            result = app.acquire_token_for_client(scopes=[self.scope])
        except Exception as exc:
            raise TokenError(
                self._redact(
                    f"Graph: token request failed for {self._who()}: {type(exc).__name__}: {exc}"
                )
            ) from None
        token = result.get("access_token") if isinstance(result, dict) else None
        if not token:
            error = result.get("error", "unknown_error") if isinstance(result, dict) else "no answer"
            description = result.get("error_description", "") if isinstance(result, dict) else ""
            first_line = str(description).splitlines()[0] if description else ""
            raise TokenError(
                self._redact(f"Graph: no token for {self._who()}: {error} {first_line}".rstrip())
            )
        return token

    def list_users(self) -> list[dict[str, Any]]:
        """Every user with the selected fields, complete or not at all."""
        users: dict[str, dict[str, Any]] = {}
        url: str | None = self.graph_url + USERS_ROUTE
        params: dict[str, Any] | None = {"$select": ",".join(USER_FIELDS), "$top": self.page_size}
        for _ in range(_MAX_PAGES):
            if url is None:
                return list(users.values())
            headers = {"Authorization": f"Bearer {self.access_token()}"}
            response = self._http.request("GET", url, route=USERS_ROUTE, params=params, headers=headers)
            body = self._http.json_of(response, "GET", USERS_ROUTE)
            if not isinstance(body, dict) or not isinstance(body.get("value"), list):
                raise self._malformed(response, "`value` is missing or not a list")
            for user in body["value"]:
                if not isinstance(user, dict) or not user.get("id"):
                    raise self._malformed(response, "an item is not a user with an id")
                users[str(user["id"])] = user
            next_link = body.get("@odata.nextLink")
            if next_link is None:
                url = None
                continue
            if not isinstance(next_link, str) or not self._same_origin(next_link):
                raise self._malformed(response, "`@odata.nextLink` does not point to the Graph API")
            url, params = next_link, None  # verbatim: it already carries every query parameter
        raise MalformedResponse(
            f"Graph GET {USERS_ROUTE}: more than {_MAX_PAGES} pages; giving up", method="GET"
        )

    def _same_origin(self, link: str) -> bool:
        ours, theirs = urlsplit(self.graph_url), urlsplit(link)
        return (ours.scheme, ours.netloc.lower()) == (theirs.scheme, theirs.netloc.lower())

    @staticmethod
    def _malformed(response: requests.Response, what: str) -> MalformedResponse:
        return MalformedResponse(
            f"Graph GET {USERS_ROUTE}: malformed answer, {what}",
            status=response.status_code,
            method="GET",
            url=response.url,
        )
