"""GitHub and GitLab issues: find the issues that mention a timepoint, open a new one.

GitHub (REST API version 2022-11-28): `GET /search/issues?q=...` finds issues and
`POST /repos/{owner}/{repo}/issues` opens one, with `Authorization: Bearer <token>`.
GitLab (API v4): `GET /projects/{path}/issues?search=...` and `POST /projects/{path}/issues`,
with the `PRIVATE-TOKEN` header; an assignee is given by numeric user ID, which
`GET /users?username=...` returns.
"""

import os
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from integrations.http import ServiceError, parse_json, preview, request
from integrations.models import TrackerProvider

# Issues kept per timepoint; a timepoint with more is a rare, long story.
MAX_ISSUES = 50
MAX_TITLE_LENGTH = 256


class TrackerConfigError(Exception):
    """Invalid or missing tracker settings. The message names the setting and the fix."""


@dataclass(frozen=True)
class NewIssue:
    number: int
    url: str


def token_for(tracker):
    """Return the API token from the environment variable the tracker names."""
    token = os.environ.get(tracker.token_variable, "").strip()
    if not token:
        raise TrackerConfigError(
            f"The environment variable {tracker.token_variable} with the API token of "
            f"{tracker.repository} is not set; set it for the web server and the worker."
        )
    return token


def find_issues(tracker, text, *, timeout):
    """Return the issues of the tracker's repository whose title or body contains `text`.

    Each issue is a dict with number, title, state, url, created_at, updated_at and comments,
    newest first, at most MAX_ISSUES.
    """
    token = token_for(tracker)
    service = _service(tracker)
    if tracker.provider == TrackerProvider.GITLAB:
        query = urlencode(
            {"search": text, "scope": "all", "per_page": MAX_ISSUES, "order_by": "created_at"}
        )
        url = f"{_project_url(tracker)}/issues?{query}"
        _, body = request(service, "GET", url, headers=_headers(tracker, token), timeout=timeout)
        rows = parse_json(service, body)
    else:
        query = urlencode(
            {
                "q": f'"{text}" repo:{tracker.repository} is:issue',
                "sort": "created",
                "order": "desc",
                "per_page": MAX_ISSUES,
            }
        )
        url = f"{_api(tracker)}/search/issues?{query}"
        _, body = request(service, "GET", url, headers=_headers(tracker, token), timeout=timeout)
        data = parse_json(service, body)
        if not isinstance(data, dict) or not isinstance(data.get("items"), list):
            raise ServiceError(f"{service} returned a search result without items.")
        rows = data["items"]
    if not isinstance(rows, list):
        raise ServiceError(f"{service} returned {type(rows).__name__} instead of a list.")
    issues = [_read_issue(service, tracker, row) for row in rows]
    needle = text.casefold()
    matching = [issue for issue in issues if needle in issue.pop("text").casefold()]
    return matching[:MAX_ISSUES]


def create_issue(tracker, *, title, body, assignee_username, timeout):
    """Open an issue, assigned to `assignee_username` when given; return a NewIssue."""
    token = token_for(tracker)
    service = _service(tracker)
    headers = _headers(tracker, token)
    if tracker.provider == TrackerProvider.GITLAB:
        payload = {"title": title, "description": body}
        if assignee_username:
            payload["assignee_ids"] = [_gitlab_user_id(tracker, assignee_username, timeout)]
        url = f"{_project_url(tracker)}/issues"
        number_key, url_key = "iid", "web_url"
    else:
        payload = {"title": title, "body": body}
        if assignee_username:
            payload["assignees"] = [assignee_username]
        url = f"{_api(tracker)}/repos/{tracker.repository}/issues"
        number_key, url_key = "number", "html_url"
    _, response = request(service, "POST", url, headers=headers, timeout=timeout, body=payload)
    data = parse_json(service, response)
    number = data.get(number_key) if isinstance(data, dict) else None
    issue_url = data.get(url_key) if isinstance(data, dict) else None
    if not isinstance(number, int) or not _is_web_url(issue_url):
        raise ServiceError(
            f"{service} returned {preview(response)} for the new issue, which has no issue "
            f"number and URL; check on the tracker whether the issue was opened."
        )
    return NewIssue(number=number, url=issue_url)


def _gitlab_user_id(tracker, username, timeout):
    service = _service(tracker)
    url = f"{_api(tracker)}/users?{urlencode({'username': username})}"
    _, body = request(
        service, "GET", url, headers=_headers(tracker, token_for(tracker)), timeout=timeout
    )
    users = parse_json(service, body)
    if not isinstance(users, list) or not users or not isinstance(users[0], dict):
        raise ServiceError(
            f"{service} has no user {username!r}; fix the staff contact's GitLab user name."
        )
    user_id = users[0].get("id")
    if not isinstance(user_id, int):
        raise ServiceError(f"{service} returned user {username!r} without a numeric id.")
    return user_id


def _read_issue(service, tracker, row):
    if not isinstance(row, dict):
        raise ServiceError(f"{service} returned an issue that is not an object: {preview(row)}.")
    if tracker.provider == TrackerProvider.GITLAB:
        number, url, body = row.get("iid"), row.get("web_url"), row.get("description")
        comments = row.get("user_notes_count")
    else:
        number, url, body = row.get("number"), row.get("html_url"), row.get("body")
        comments = row.get("comments")
    title = row.get("title")
    if not isinstance(number, int) or not isinstance(title, str) or not _is_web_url(url):
        raise ServiceError(
            f"{service} returned an issue without number, title or URL: {preview(row)}."
        )
    return {
        "number": number,
        "title": title[:MAX_TITLE_LENGTH],
        "state": _text(row.get("state"), 16),
        "url": url,
        "created_at": _text(row.get("created_at"), 32),
        "updated_at": _text(row.get("updated_at"), 32),
        "comments": comments if isinstance(comments, int) else 0,
        # Only used to keep issues that mention the timepoint; removed before storing.
        "text": f"{title}\n{body if isinstance(body, str) else ''}",
    }


def _text(value, length):
    return value[:length] if isinstance(value, str) else ""


def _is_web_url(value):
    # Issue links are shown on pages, so only http(s) URLs are accepted (no javascript:).
    if not isinstance(value, str) or len(value) >= 1024:
        return False
    return value.startswith(("https://", "http://"))


def _api(tracker):
    return tracker.api_url.rstrip("/")


def _project_url(tracker):
    return f"{_api(tracker)}/projects/{quote(tracker.repository, safe='')}"


def _service(tracker):
    return f"{tracker.get_provider_display()} at {_api(tracker)}"


def _headers(tracker, token):
    if tracker.provider == TrackerProvider.GITLAB:
        return {"PRIVATE-TOKEN": token, "Accept": "application/json"}
    return {
        "Authorization": f"Bearer {token}",
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": "2022-11-28",
    }
