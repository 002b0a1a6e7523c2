"""Following a redirect, or not: a pure decision over the answer, the spec's policy and its secrets.

    [api] redirects = "none"         a 3xx fails the row as ``redirect`` (the default)
                      "same-origin"  followed within the API's scheme, host and port
                      "any"          followed anywhere, but nothing secret goes to another origin

A request to another origin never carries ``Authorization``, ``Cookie``, ``Proxy-Authorization``
or any header holding a secret (the senders keep a second client without them), and a redirect
is refused when following it would put a secret elsewhere: in the target URL (a server copying our
query), or in a body a 307/308 re-sends. Every hop is a request of its own, under the caller's
limits and within the same attempt; at most ``MAX_HOPS`` of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import urljoin, urlsplit

from yarl import URL

from service.calling.requests import PreparedRequest
from service.errors import CallError, ErrorClass
from service.redact import Redactor
from service.spec import RequestSpec

RedirectPolicy = Literal["none", "same-origin", "any"]
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# Statuses after which one attempt may send another request (``FollowUp``).
FOLLOWED_UP = REDIRECT_STATUSES | {401}
MAX_HOPS = 5
CREDENTIAL_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})
_DEFAULT_PORTS = {"http": 80, "https": 443}

Origin = tuple[str, str, int | None]


def origin_of(url: str) -> Origin:
    """Scheme, host and port of ``url`` (the port made explicit), lower-cased where case is moot."""
    split = urlsplit(url)
    scheme = split.scheme.lower()
    return scheme, (split.hostname or "").lower(), split.port or _DEFAULT_PORTS.get(scheme)


@dataclass(frozen=True)
class Redirects:
    """The spec's redirect policy, from the API's origin, knowing the spec's secrets."""

    policy: RedirectPolicy
    api_origin: Origin
    redact: Redactor

    @classmethod
    def for_request(cls, request: RequestSpec, redact: Redactor) -> Redirects:
        """The policy of a spec's ``request``, from its origin."""
        return cls(request.redirects, origin_of(request.origin), redact)

    def next_hop(self, request: PreparedRequest, status: int, location: str, hops: int) -> PreparedRequest:
        """The request following ``status``'s redirect to ``location`` after ``hops`` hops;
        ``CallError(redirect)`` saying why when it is not followed."""
        target = str(URL(urljoin(request.url, location.strip())))
        said = f"HTTP {status} redirect to {self.redact(target)}"
        if urlsplit(target).scheme.lower() not in _DEFAULT_PORTS:
            raise CallError(ErrorClass.REDIRECT, f"{said}: not an http(s) URL")
        if self.policy == "none":
            raise CallError(ErrorClass.REDIRECT, f'{said} ([api].redirects = "none")')
        foreign = origin_of(target) != self.api_origin
        if foreign and self.policy == "same-origin":
            raise CallError(ErrorClass.REDIRECT, f'{said}: another origin ([api].redirects = "same-origin")')
        if hops >= MAX_HOPS:
            raise CallError(ErrorClass.REDIRECT, f"{said}: more than {MAX_HOPS} redirects")
        # 307 and 308 repeat the request as it was; the others ask for a GET (as browsers do).
        method, body = (request.method, request.body) if status in (307, 308) else ("GET", None)
        if foreign and self.redact.finds_in(target):
            raise CallError(ErrorClass.REDIRECT, f"{said}: would send a secret to another origin")
        if foreign and body is not None and self.redact.finds_in(body.decode("utf-8", "replace")):
            raise CallError(ErrorClass.REDIRECT, f"{said}: would re-send a body holding a secret elsewhere")
        return PreparedRequest(method, target, body, request.key, foreign=foreign)


class FollowUp:
    """One attempt's further requests: redirects, followed as ``redirects`` allows, and with
    ``reauthorizes`` (a sender that lets an expired token go) the same request once more after a
    401; a second 401 is the answer."""

    __slots__ = ("_hops", "_reauthorized", "_reauthorizes", "_redirects")

    def __init__(self, redirects: Redirects, *, reauthorizes: bool) -> None:
        self._redirects = redirects
        self._reauthorizes = reauthorizes
        self._hops = 0
        self._reauthorized = False

    def next_request(
        self, request: PreparedRequest, status: int, location: str | None
    ) -> PreparedRequest | None:
        """What to send after ``request`` got ``status`` (redirected to ``location``), or None
        when that was the answer; ``CallError(redirect)`` for a redirect not followed."""
        if status == 401:
            if not self._reauthorizes or self._reauthorized or request.foreign:
                return None
            self._reauthorized = True
            return request
        if location is None or status not in REDIRECT_STATUSES:
            return None
        following = self._redirects.next_hop(request, status, location, self._hops)
        self._hops += 1
        return following
