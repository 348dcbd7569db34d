"""The GitHub client adapter (PyGithub): configuration from settings, and GitHub's errors
sorted into retry-or-stop, with GitHub's HTTP API mocked at the transport (``responses``).
The bug-to-fix workflow that uses it is tested in ``tests/bugfix``."""

import time

import pytest
import requests
import responses
from github import GithubException

from integrations.github import client
from integrations.github.client import GithubFailure, GithubNotConfigured, classify
from tests.integrations import github_api as gh


@pytest.fixture(autouse=True)
def github_settings(settings):
    settings.GITHUB_TOKEN = "ghp_test_token"
    settings.GITHUB_REPOSITORY = gh.REPO
    return settings


def test_without_a_token_there_is_no_client(settings):
    settings.GITHUB_TOKEN = ""
    assert not client.configured()
    with pytest.raises(GithubNotConfigured, match="GITHUB_TOKEN"):
        client.repository(gh.REPO)


def test_the_repository_is_read_with_the_token():
    with responses.RequestsMock() as mock:
        mock.get(gh.M, json=gh.repo())
        repo = client.repository(gh.REPO, lazy=False)
        (call,) = mock.calls
    assert repo.default_branch == "main"
    assert call.request.headers["Authorization"] == "token ghp_test_token"


def test_a_secondary_rate_limit_uses_retry_after():
    failure = classify(
        GithubException(
            429, gh.error(429, "You have exceeded a secondary rate limit."), {"Retry-After": "30"}
        )
    )
    assert failure.retry_in == 30 and "rate limit" in failure.message


def test_a_primary_rate_limit_waits_for_its_reset():
    reset = int(time.time()) + 120
    failure = classify(
        GithubException(
            403,
            gh.error(403, "API rate limit exceeded for user ID 1."),
            {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)},
        )
    )
    assert 110 <= failure.retry_in <= 121 and failure.status == 403


@pytest.mark.parametrize(
    ("exc", "retry_in", "expected"),
    [
        (GithubException(401, gh.error(401, "Bad credentials"), {}), None, "bad credentials"),
        (
            GithubException(404, gh.error(404, "Not Found"), {}),
            None,
            "Repository acme/flowboard was not found",
        ),
        (GithubException(502, gh.error(502, "Server Error"), {}), 60, "GitHub answered 502"),
        (requests.exceptions.ConnectionError("refused"), 30, "could not be reached"),
        (
            GithubException(422, gh.error(422, "Validation Failed"), {}),
            None,
            "GitHub refused the request (422)",
        ),
    ],
)
def test_errors_say_whether_to_retry(exc, retry_in, expected):
    failure = classify(exc, repository=gh.REPO)
    assert isinstance(failure, GithubFailure)
    assert failure.retry_in == retry_in and expected in failure.message


def test_anything_else_is_not_swallowed():
    with pytest.raises(ZeroDivisionError):
        classify(ZeroDivisionError())
