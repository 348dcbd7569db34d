"""GitHub REST/GraphQL answers in the shapes GitHub documents (trimmed to the fields that
matter, plus the ones PyGithub reads), and a ``responses`` mock of the API."""

from __future__ import annotations

import base64
import json

import responses

API = "https://api.github.com"
OWNER, NAME = "acme", "flowboard"
REPO = f"{OWNER}/{NAME}"
R = f"{API}/repos/{REPO}"
# PyGithub names the port in the URLs it requests: the mocks are registered that way.
MOCK_API = "https://api.github.com:443"
M = f"{MOCK_API}/repos/{REPO}"
HTML = f"https://github.com/{REPO}"
SHA_MAIN = "6dcb09b5b57875f334f61aebed695e2e4193db5e"


def user(login="octocat"):
    return {
        "login": login,
        "id": 1,
        "node_id": "MDQ6VXNlcjE=",
        "avatar_url": "https://github.com/images/error/octocat_happy.gif",
        "url": f"{API}/users/{login}",
        "html_url": f"https://github.com/{login}",
        "type": "User",
        "site_admin": False,
    }


def repo():
    return {
        "id": 1296269,
        "node_id": "MDEwOlJlcG9zaXRvcnkxMjk2MjY5",
        "name": NAME,
        "full_name": REPO,
        "owner": user(OWNER),
        "private": True,
        "html_url": HTML,
        "url": R,
        "default_branch": "main",
        "visibility": "private",
        "permissions": {"admin": False, "push": True, "pull": True},
    }


def label(name):
    return {
        "id": 208045946,
        "node_id": "MDU6TGFiZWwyMDgwNDU5NDY=",
        "url": f"{R}/labels/{name}",
        "name": name,
        "color": "f29513",
        "default": name == "bug",
    }


def issue(number=1347, *, title="Export hangs [HD-1]", body="", state="open"):
    return {
        "id": 1,
        "node_id": "MDU6SXNzdWUx",
        "url": f"{R}/issues/{number}",
        "repository_url": R,
        "html_url": f"{HTML}/issues/{number}",
        "number": number,
        "state": state,
        "state_reason": "completed" if state == "closed" else None,
        "title": title,
        "body": body,
        "user": user(),
        "labels": [label("bug"), label("from-helpdesk")],
        "assignees": [],
        "locked": False,
        "comments": 0,
        "created_at": "2026-11-22T10:00:00Z",
        "updated_at": "2026-11-22T10:00:00Z",
        "closed_at": None,
        "author_association": "MEMBER",
    }


def ref(name="heads/main", sha=SHA_MAIN):
    return {
        "ref": f"refs/{name}",
        "node_id": "MDM6UmVmcmVmcy9oZWFkcy9mZWF0dXJlQQ==",
        "url": f"{R}/git/refs/{name}",
        "object": {"type": "commit", "sha": sha, "url": f"{R}/git/commits/{sha}"},
    }


def tree(paths):
    return {
        "sha": SHA_MAIN,
        "url": f"{R}/git/trees/{SHA_MAIN}",
        "tree": [
            {
                "path": p,
                "mode": "100644",
                "type": "blob",
                "sha": f"{i:040x}",
                "size": 1200,
                "url": f"{R}/git/blobs/{i:040x}",
            }
            for i, p in enumerate(paths, 1)
        ]
        + [
            {
                "path": "flowboard",
                "mode": "040000",
                "type": "tree",
                "sha": "f" * 40,
                "url": f"{R}/git/trees/{'f' * 40}",
            }
        ],
        "truncated": False,
    }


def contents(path, text, *, sha="3d21ec53a331a6f037a91c368710b99387d012c1", ref="main"):
    encoded = base64.b64encode(text.encode()).decode()
    return {
        "type": "file",
        "encoding": "base64",
        "size": len(text),
        "name": path.rsplit("/", 1)[-1],
        "path": path,
        "content": encoded,
        "sha": sha,
        "url": f"{R}/contents/{path}?ref={ref}",
        "git_url": f"{R}/git/blobs/{sha}",
        "html_url": f"{HTML}/blob/{ref}/{path}",
        "download_url": f"https://raw.githubusercontent.com/{REPO}/{ref}/{path}",
        "_links": {
            "self": f"{R}/contents/{path}",
            "git": f"{R}/git/blobs/{sha}",
            "html": f"{HTML}/blob/{ref}/{path}",
        },
    }


def file_commit(path, branch):
    return {
        "content": contents(path, "", ref=branch),
        "commit": {
            "sha": "7638417db6d59f3c431d3e1f261cc637155684cd",
            "node_id": "MDY6Q29tbWl0NzYzODQxN2RiNmQ1OWYzYzQzMWQzZTFmMjYxY2M2MzcxNTU2ODRjZA==",
            "url": f"{R}/git/commits/7638417db6d59f3c431d3e1f261cc637155684cd",
            "html_url": f"{HTML}/commit/7638417db6d59f3c431d3e1f261cc637155684cd",
            "message": "Fix",
            "author": {
                "date": "2026-11-22T10:01:00Z",
                "name": "helpdesk",
                "email": "bot@example.com",
            },
            "committer": {
                "date": "2026-11-22T10:01:00Z",
                "name": "helpdesk",
                "email": "bot@example.com",
            },
            "tree": {"url": f"{R}/git/trees/{SHA_MAIN}", "sha": SHA_MAIN},
            "parents": [
                {
                    "url": f"{R}/git/commits/{SHA_MAIN}",
                    "html_url": f"{HTML}/commit/{SHA_MAIN}",
                    "sha": SHA_MAIN,
                }
            ],
        },
    }


def pull(number=1348, *, branch="helpdesk/ticket-x", draft=True, state="open", merged=False):
    return {
        "id": 1,
        "node_id": "PR_kwDOABCD5M5abcd",
        "url": f"{R}/pulls/{number}",
        "html_url": f"{HTML}/pull/{number}",
        "diff_url": f"{HTML}/pull/{number}.diff",
        "patch_url": f"{HTML}/pull/{number}.patch",
        "issue_url": f"{R}/issues/{number}",
        "commits_url": f"{R}/pulls/{number}/commits",
        "review_comments_url": f"{R}/pulls/{number}/comments",
        "comments_url": f"{R}/issues/{number}/comments",
        "statuses_url": f"{R}/statuses/7638417db6d59f3c431d3e1f261cc637155684cd",
        "number": number,
        "state": state,
        "draft": draft,
        "locked": False,
        "title": "Fix #1347",
        "body": "Refs #1347",
        "user": user(),
        "head": {
            "label": f"{OWNER}:{branch}",
            "ref": branch,
            "sha": "7638417db6d59f3c431d3e1f261cc637155684cd",
            "user": user(OWNER),
            "repo": repo(),
        },
        "base": {
            "label": f"{OWNER}:main",
            "ref": "main",
            "sha": SHA_MAIN,
            "user": user(OWNER),
            "repo": repo(),
        },
        "merged": merged,
        "mergeable": None,
        "created_at": "2026-11-22T10:02:00Z",
        "updated_at": "2026-11-22T10:02:00Z",
        "closed_at": None,
        "merged_at": None,
        "author_association": "MEMBER",
    }


def error(status, message, **extra):
    return {
        "message": message,
        "documentation_url": "https://docs.github.com/rest",
        "status": str(status),
        **extra,
    }


def requests_to(mock: responses.RequestsMock, method: str, url: str):
    return [
        c.request
        for c in mock.calls
        if c.request.method == method and c.request.url.split("?")[0] == url
    ]


def body(request) -> dict:
    return json.loads(request.body)
