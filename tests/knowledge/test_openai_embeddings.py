"""The OpenAI embeddings provider through the real ``openai`` SDK; HTTP is mocked at the
transport (tests/http_mock.py: the SDK is built on httpx2, which respx does not patch)."""

import math

import httpx2
import pytest

from integrations.embeddings import EmbeddingError
from integrations.embeddings.openai import OpenAIEmbeddings
from tests.http_mock import MockRouter

URL = "https://api.openai.com/v1/embeddings"


def embeddings_body(vectors, model="text-embedding-3-small"):
    # The shape OpenAI returns (CreateEmbeddingResponse).
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)
        ],
        "model": model,
        "usage": {"prompt_tokens": 8, "total_tokens": 8},
    }


def error_body(message, type_, code=None):
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


def vector(seed):
    return [((seed * 31 + i * 7) % 13 - 6) / 10 for i in range(384)]


@pytest.fixture
def router():
    return MockRouter()


def provider(router, **kwargs):
    return OpenAIEmbeddings(api_key="test-key", http_client=router.client(), **kwargs)


def test_embeds_in_order_at_384_dimensions_unit_length(router):
    body = embeddings_body([vector(1), vector(2)])
    body["data"].reverse()  # the API may answer out of order; "index" tells
    route = router.post(URL).respond(200, json=body)

    result = provider(router).embed_documents(["first", "second"])

    assert route.calls[0].json() == {
        "model": "text-embedding-3-small",
        "input": ["first", "second"],
        "dimensions": 384,
        "encoding_format": "float",
    }
    assert route.calls[0].request.headers["Authorization"] == "Bearer test-key"
    assert len(result) == 2 and len(result[0]) == 384
    assert math.isclose(sum(x * x for x in result[0]), 1.0, rel_tol=1e-9)
    norm = math.sqrt(sum(x * x for x in vector(1)))
    assert result[0][:3] == pytest.approx([x / norm for x in vector(1)[:3]])


def test_batches_large_inputs(router):
    def answer(request):
        count = len(__import__("json").loads(request.content)["input"])
        return httpx2.Response(200, json=embeddings_body([vector(i) for i in range(count)]))

    route = router.post(URL).queue(answer, answer, answer)

    result = provider(router, batch_size=2).embed_documents(["a", "b", "c", "d", "e"])

    assert len(result) == 5
    assert [len(call.json()["input"]) for call in route.calls] == [2, 2, 1]


def test_429_with_retry_after_is_retried_by_the_sdk(router):
    route = router.post(URL).queue(
        (
            429,
            error_body("Rate limit reached", "requests", "rate_limit_exceeded"),
            {"retry-after": "0"},
        ),
        (200, embeddings_body([vector(3)])),
    )

    result = provider(router, max_retries=2).embed_query("hello")

    assert route.call_count == 2
    assert len(result) == 384


def test_500_then_success(router):
    route = router.post(URL).queue(
        (500, error_body("The server had an error", "server_error"), {"retry-after": "0"}),
        (200, embeddings_body([vector(4)])),
    )

    assert len(provider(router, max_retries=1).embed_query("x")) == 384
    assert route.call_count == 2


def test_persistent_server_errors_become_an_embedding_error(router):
    route = router.post(URL).respond(
        500,
        json=error_body("The server had an error", "server_error"),
        headers={"retry-after": "0"},
    )

    with pytest.raises(EmbeddingError, match="OpenAI embeddings failed"):
        provider(router, max_retries=1).embed_documents(["x"])
    assert route.call_count == 2


def test_timeouts_are_retried_then_reported(router):
    route = router.post(URL).respond(200, json={}).queue()
    route.responses.insert(0, ("once", httpx2.ReadTimeout("timed out")))
    route.responses.insert(1, ("once", httpx2.ReadTimeout("timed out")))

    with pytest.raises(EmbeddingError, match="timed out"):
        provider(router, max_retries=1).embed_documents(["x"])
    assert route.call_count == 2


def test_bad_key_is_not_retried(router):
    route = router.post(URL).respond(
        401,
        json=error_body("Incorrect API key provided", "invalid_request_error", "invalid_api_key"),
    )

    with pytest.raises(EmbeddingError, match="Incorrect API key"):
        provider(router, max_retries=3).embed_documents(["x"])
    assert route.call_count == 1


def test_the_setting_needs_a_key(settings):
    settings.OPENAI_API_KEY = ""
    with pytest.raises(EmbeddingError, match="needs OPENAI_API_KEY"):
        OpenAIEmbeddings.from_settings()
