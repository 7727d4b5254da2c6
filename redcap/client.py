"""A small client for the two REDCap API calls qcdash makes: record export and version export.

The REDCap API takes form-encoded POSTs to one endpoint (`<server>/api/`) with the project's
token in the body; `content` selects the call. Errors come back as a 4xx or 5xx status with a
JSON body `{"error": "..."}` when `returnFormat=json`. The token is sent only in the request
body, and no message raised here contains it.
"""

import http.client
import json
import urllib.error
import urllib.request
from urllib.parse import urlencode, urlsplit

# Upper bound of a response body; a full export of a large survey project stays far below it.
MAX_RESPONSE_BYTES = 64 * 1024 * 1024
# Characters of a REDCap error message repeated in ours.
MAX_ERROR_TEXT = 300


class RedcapApiError(Exception):
    """A REDCap API call that failed in a way that retrying will not fix (bad token, bad field)."""


class RedcapUnavailable(RedcapApiError):
    """A REDCap API call that failed in a way that may pass later: timeout, refused, 5xx, 429."""


def export_records(api_url, token, *, records=(), events=(), fields=(), forms=(), timeout):
    """Export records as a list of dicts (REDCap's flat JSON: one dict per record and event).

    Empty `records`, `events`, `fields` or `forms` mean all of them. Raise RedcapUnavailable for
    failures worth retrying and RedcapApiError for the others.
    """
    params = [
        ("token", token),
        ("content", "record"),
        ("action", "export"),
        ("format", "json"),
        ("type", "flat"),
        ("rawOrLabel", "raw"),
        ("returnFormat", "json"),
    ]
    for name, values in (("records", records), ("events", events), ("fields", fields)):
        params += [(f"{name}[{index}]", value) for index, value in enumerate(values)]
    params += [(f"forms[{index}]", value) for index, value in enumerate(forms)]

    body = _post(api_url, params, timeout)
    try:
        rows = json.loads(body)
    except ValueError:
        raise RedcapApiError(
            f"REDCap at {api_url} returned a record export that is not JSON "
            f"({_preview(body)}); check that the API URL points to REDCap's /api/ endpoint."
        ) from None
    if isinstance(rows, dict) and "error" in rows:
        raise RedcapApiError(f"REDCap at {api_url} returned an error: {_preview(rows['error'])}")
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise RedcapApiError(
            f"REDCap at {api_url} returned {type(rows).__name__} instead of a list of records."
        )
    return rows


def export_version(api_url, token, *, timeout):
    """Return the REDCap version string, e.g. '14.5.2'."""
    body = _post(api_url, [("token", token), ("content", "version")], timeout)
    version = body.decode("utf-8", errors="replace").strip()
    if not version or len(version) > 32 or not all(part.isdigit() for part in version.split(".")):
        raise RedcapApiError(
            f"REDCap at {api_url} returned {_preview(body)} as its version, which is not a "
            f"version number such as 14.5.2."
        )
    return version


def _post(api_url, params, timeout):
    scheme = urlsplit(api_url).scheme
    if scheme not in ("http", "https"):
        raise RedcapApiError(
            f"The REDCap API URL {api_url!r} is not an http or https URL; fix it in the "
            f"REDCap configuration."
        )
    # The scheme was checked above, so no file: or other URL is opened.
    request = urllib.request.Request(  # noqa: S310
        api_url,
        data=urlencode(params).encode("ascii"),
        headers={
            "Accept": "application/json",
            "Content-Type": "application/x-www-form-urlencoded",
        },
        method="POST",
    )
    try:
        # NOTE: urllib applies the timeout to each socket operation (connect, each read), so a
        # server that keeps sending slowly can take longer than `timeout` in total.
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return _read_limited(response, api_url)
    except urllib.error.HTTPError as error:
        raise _http_error(api_url, error) from None
    except TimeoutError:
        raise RedcapUnavailable(_timeout_message(api_url, timeout)) from None
    except urllib.error.URLError as error:
        if isinstance(error.reason, TimeoutError):
            raise RedcapUnavailable(_timeout_message(api_url, timeout)) from None
        raise RedcapUnavailable(f"REDCap at {api_url} cannot be reached: {error.reason}.") from None
    except (OSError, http.client.HTTPException) as error:
        # Connection reset, a response cut short and the like.
        raise RedcapUnavailable(f"REDCap at {api_url} cannot be reached: {error!r}.") from None


def _timeout_message(api_url, timeout):
    return f"REDCap at {api_url} timed out after {timeout:g} seconds."


def _read_limited(response, api_url):
    body = response.read(MAX_RESPONSE_BYTES + 1)
    if len(body) > MAX_RESPONSE_BYTES:
        raise RedcapApiError(
            f"REDCap at {api_url} returned more than {MAX_RESPONSE_BYTES} bytes; export fewer "
            f"records at a time."
        )
    return body


def _http_error(api_url, error):
    try:
        body = error.read(64 * 1024)
    except OSError:
        body = b""
    message = _error_message(body)
    detail = f": {message}" if message else ""
    status = error.code
    if status == 429 or status >= 500:
        return RedcapUnavailable(f"REDCap at {api_url} returned HTTP {status}{detail}.")
    if status in (401, 403):
        return RedcapApiError(
            f"REDCap at {api_url} rejected the request with HTTP {status}{detail}. Check that the "
            f"API token is valid and has API export rights; replace it in the admin if needed."
        )
    return RedcapApiError(f"REDCap at {api_url} returned HTTP {status}{detail}.")


def _error_message(body):
    """Return REDCap's error text from a JSON error body, else a short preview of the body."""
    try:
        data = json.loads(body)
    except ValueError:
        return _preview(body) if body else ""
    if isinstance(data, dict) and "error" in data:
        return _preview(data["error"])
    return _preview(body)


def _preview(value):
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    text = " ".join(str(value).split())
    if len(text) > MAX_ERROR_TEXT:
        text = text[:MAX_ERROR_TEXT] + "…"
    return repr(text)
