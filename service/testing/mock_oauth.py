"""The mock API's OAuth2 mode: a client-credentials token endpoint whose tokens expire, and the
check every lookup then passes (a 401 for a missing, unknown, expired or revoked token)."""

from __future__ import annotations

import itertools
import time
import urllib.parse
from collections.abc import Callable

import orjson
from aiohttp import web


class TokenIssuer:
    """Issues ``tok-<n>-<nonce>`` to ``client_id``/``client_secret``, each valid ``ttl_s``."""

    def __init__(
        self, client: str, ttl_s: float, *, now: Callable[[], float] = time.monotonic, nonce: str = ""
    ) -> None:
        self.client_id, _, self.client_secret = client.partition(":")
        self.ttl_s = ttl_s
        self._now = now
        self._nonce = nonce
        self._numbers = itertools.count(1)
        self._expiry: dict[str, float] = {}
        self.issued = 0

    def issue(self, form_body: bytes) -> tuple[int, bytes]:
        """The token endpoint's answer to a form: 200 with a token, 400 or 401 (RFC 6749 5.2)."""
        form = dict(urllib.parse.parse_qsl(form_body.decode("utf-8", "replace")))
        if form.get("grant_type") != "client_credentials":
            return 400, orjson.dumps({"error": "unsupported_grant_type"})
        if (form.get("client_id"), form.get("client_secret")) != (self.client_id, self.client_secret):
            return 401, orjson.dumps({"error": "invalid_client"})
        token = f"tok-{next(self._numbers)}-{self._nonce}"
        self._expiry[token] = self._now() + self.ttl_s
        self.issued += 1
        answer = {"access_token": token, "token_type": "Bearer", "expires_in": self.ttl_s}
        return 200, orjson.dumps(answer)

    def admits(self, authorization: str | None) -> bool:
        """Whether a request with this ``Authorization`` header carries a live token."""
        scheme, _, token = (authorization or "").partition(" ")
        expiry = self._expiry.get(token) if scheme.lower() == "bearer" else None
        return expiry is not None and self._now() < expiry

    def revoke(self) -> None:
        """Every token issued so far stops working (as a rotated signing key would do)."""
        self._expiry.clear()


def oauth_routes(issuer: TokenIssuer, count: Callable[[str], None]) -> list[web.RouteDef]:
    """``POST /oauth/token`` (each token issued counted: ``count("tokens_issued")``) and
    ``POST /_revoke`` (every token so far stops working)."""

    async def token(request: web.Request) -> web.Response:
        status, body = issuer.issue(await request.read())
        if status == 200:
            count("tokens_issued")
        return web.Response(status=status, body=body, content_type="application/json")

    async def revoke(request: web.Request) -> web.Response:
        issuer.revoke()
        return web.Response(body=b'{"revoked": true}', content_type="application/json")

    return [web.post("/oauth/token", token), web.post("/_revoke", revoke)]
