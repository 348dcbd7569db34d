"""Mock HTTP at the transport for SDKs built on ``httpx2`` (anthropic, openai), like
respx does for ``httpx``: the SDK's own client code runs (request building, retries with
backoff and ``retry-after``, response parsing, error mapping); only the network is fake.

    router = MockRouter()
    route = router.post("https://api.openai.com/v1/embeddings").respond(200, json={...})
    client = openai.OpenAI(api_key="k", http_client=router.client())
    ...
    assert route.call_count == 1 and route.calls[0].json()["model"] == "…"
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import httpx2


@dataclass
class Call:
    request: httpx2.Request

    def json(self):
        return json.loads(self.request.content)


@dataclass
class Route:
    method: str
    url: str
    responses: list = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)

    def respond(self, status: int = 200, *, json=None, headers=None, text=None) -> Route:
        """Answer every call this way (after any queued answers run out)."""
        self.responses.append(("always", (status, json, headers, text)))
        return self

    def queue(self, *answers) -> Route:
        """Answer the next calls in order: (status, json) / (status, json, headers),
        an exception instance to raise (e.g. httpx2.ReadTimeout), or a callable."""
        for answer in answers:
            self.responses.append(("once", answer))
        return self

    @property
    def call_count(self) -> int:
        return len(self.calls)

    def _answer(self, request: httpx2.Request) -> httpx2.Response:
        self.calls.append(Call(request))
        if not self.responses:
            raise AssertionError(f"no answer left for {self.method} {self.url}")
        kind, answer = self.responses[0]
        if kind == "once":
            self.responses.pop(0)
        if isinstance(answer, Exception):
            raise answer
        if callable(answer):
            return answer(request)
        status, body, headers, text = (*answer, None, None)[:4]
        if text is not None:
            return httpx2.Response(status, text=text, headers=headers or {})
        return httpx2.Response(status, json=body, headers=headers or {})


class MockRouter:
    def __init__(self):
        self.routes: list[Route] = []

    def _route(self, method: str, url: str) -> Route:
        route = Route(method, url)
        self.routes.append(route)
        return route

    def post(self, url: str) -> Route:
        return self._route("POST", url)

    def get(self, url: str) -> Route:
        return self._route("GET", url)

    def handler(self, request: httpx2.Request) -> httpx2.Response:
        url = str(request.url).split("?")[0]
        for route in self.routes:
            if route.method == request.method and url == route.url:
                return route._answer(request)
        raise AssertionError(f"unexpected request {request.method} {request.url}")

    def client(self, **kwargs) -> httpx2.Client:
        return httpx2.Client(transport=httpx2.MockTransport(self.handler), **kwargs)

    def async_client(self, **kwargs) -> httpx2.AsyncClient:
        async def handle(request):
            return self.handler(request)

        return httpx2.AsyncClient(transport=httpx2.MockTransport(handle), **kwargs)
