"""The HTTP requests the XNAT and issue tracker clients make, with bounded bodies and timeouts.

No message raised here contains a credential: callers pass them in headers only.
"""

import http.client
import json
import urllib.error
import urllib.request
from urllib.parse import urlsplit

# Maximum size of a response body. A search result of 50 issues is far below it.
MAX_RESPONSE_BYTES = 2 * 1024 * 1024
# Characters of a server's error text repeated in ours.
MAX_ERROR_TEXT = 300


class ServiceError(Exception):
    """A call that failed in a way that retrying will not fix (bad credentials, not found)."""

    def __init__(self, message, status=None):
        super().__init__(message)
        self.status = status


class ServiceUnavailable(ServiceError):
    """A call that failed in a way that may pass later: timeout, refused, HTTP 5xx or 429."""


def request(service, method, url, *, headers, timeout, body=None):
    """Send one request and return (status, body bytes) for a 2xx response.

    `service` names the server in messages ("XNAT at https://xnat.example.org"). Raise
    ServiceUnavailable for failures worth retrying and ServiceError for the others.
    """
    if urlsplit(url).scheme not in ("http", "https"):
        raise ServiceError(f"{service}: {url!r} is not an http or https URL; fix the setting.")
    data = None
    if body is not None:
        data = json.dumps(body).encode("utf-8")
        headers = {**headers, "Content-Type": "application/json"}
    # The scheme was checked above, so no file: or other URL is opened.
    prepared = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310
    try:
        # NOTE: urllib applies the timeout to each socket operation (connect, each read), so a
        # server that keeps sending slowly can take longer than `timeout` in total.
        with urllib.request.urlopen(prepared, timeout=timeout) as response:  # noqa: S310
            return response.status, _read_limited(response, service)
    except urllib.error.HTTPError as error:
        raise _http_error(service, error) from None
    except TimeoutError:
        raise ServiceUnavailable(_timeout_message(service, timeout)) from None
    except urllib.error.URLError as error:
        if isinstance(error.reason, TimeoutError):
            raise ServiceUnavailable(_timeout_message(service, timeout)) from None
        raise ServiceUnavailable(f"{service} cannot be reached: {error.reason}.") from None
    except (OSError, http.client.HTTPException) as error:
        # Connection reset, a response cut short and the like.
        raise ServiceUnavailable(f"{service} cannot be reached: {error!r}.") from None


def parse_json(service, body):
    """Return the JSON value of a response body; raise ServiceError when it is not JSON."""
    try:
        return json.loads(body)
    except ValueError:
        raise ServiceError(
            f"{service} returned a response that is not JSON ({preview(body)}); check that the "
            f"API URL points to the API, not to the web pages."
        ) from None


def preview(value):
    """Return a short, single-line, quoted form of a response body or value for messages."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    text = " ".join(str(value).split())
    if len(text) > MAX_ERROR_TEXT:
        text = text[:MAX_ERROR_TEXT] + "…"
    return repr(text)


def _timeout_message(service, timeout):
    return f"{service} timed out after {timeout:g} seconds."


def _read_limited(response, service):
    body = response.read(MAX_RESPONSE_BYTES + 1)
    if len(body) > MAX_RESPONSE_BYTES:
        raise ServiceError(f"{service} returned more than {MAX_RESPONSE_BYTES} bytes.")
    return body


def _http_error(service, error):
    try:
        body = error.read(64 * 1024)
    except OSError:
        body = b""
    detail = f": {preview(body)}" if body else ""
    status = error.code
    if status == 429 or status >= 500:
        return ServiceUnavailable(f"{service} returned HTTP {status}{detail}.", status)
    if status in (401, 403):
        return ServiceError(
            f"{service} rejected the credentials with HTTP {status}{detail}. Check the user "
            f"name, password or token and its rights.",
            status,
        )
    return ServiceError(f"{service} returned HTTP {status}{detail}.", status)
