"""HTTP responses for archive files: content types, conditional requests and byte ranges.

NiiVue and other readers of large volumes request parts of a file with a Range header
(RFC 9110, section 14). The response to a single range is 206 with only those bytes. A header
this module cannot parse, or one that lists several ranges, is ignored and the whole file is
sent with 200, as RFC 9110 allows a server to do.
"""

import mimetypes
import re
from dataclasses import dataclass

from django.http import FileResponse, HttpResponse, StreamingHttpResponse
from django.utils.cache import get_conditional_response
from django.utils.http import http_date, parse_http_date_safe, quote_etag

CHUNK_SIZE = 64 * 1024
# Digits beyond this many make a position larger than any file (2**63 has 19 digits), so the
# parser caps them instead of building huge integers. Python refuses int() of over 4300 digits.
MAX_POSITION_DIGITS = 19
BEYOND_ANY_FILE = 2**63

_SINGLE_RANGE = re.compile(r"bytes=([0-9]*)-([0-9]*)", re.IGNORECASE)


class RangeNotSatisfiable(Exception):
    """The Range header is valid but no byte of it lies inside the file."""


@dataclass(frozen=True)
class ByteRange:
    """An inclusive range of byte positions, `first` to `last`, inside a file."""

    first: int
    last: int

    @property
    def length(self):
        return self.last - self.first + 1


def has_dot_segments(relative_path):
    """Return whether a request path has a ".", ".." or empty segment.

    Such a path is rejected before any check: the site check reads the path as written, but the
    file system resolves symlinks before "..", so `<ID>/link/../file` can reach a file under
    another ID's folder.
    """
    return any(segment in ("", ".", "..") for segment in relative_path.split("/"))


def archive_file_path(study, relative_path):
    """Return the resolved Path of a regular file inside the study's archive, or None.

    Symlinks and ".." are resolved before the containment check, so neither can leave the
    archive. This checks no permission.
    """
    root = study.archive_root.resolve()
    try:
        path = (root / relative_path).resolve(strict=True)
    except (OSError, RuntimeError, ValueError):
        # ValueError: a NUL byte in the path. RuntimeError: a symlink loop.
        return None
    if not path.is_relative_to(root) or not path.is_file():
        return None
    return path


def content_type_for(path):
    """Return the Content-Type of an archive file, never with a Content-Encoding.

    A compressed file such as `scan.nii.gz` is sent as the compressed bytes with type
    application/gzip, so browsers hand the gzip stream to the page unchanged. Sending it with
    `Content-Encoding: gzip` would make the browser decompress it before NiiVue reads it.
    """
    content_type, encoding = mimetypes.guess_type(path.name)
    if encoding == "gzip":
        return "application/gzip"
    if encoding is not None:
        # bzip2, xz and the like: the bytes are compressed, so the inner type would be false.
        return "application/octet-stream"
    return content_type or "application/octet-stream"


def _position(digits):
    digits = digits.lstrip("0") or "0"
    if len(digits) > MAX_POSITION_DIGITS:
        return BEYOND_ANY_FILE
    return int(digits)


def parse_range(header, size):
    """Return the ByteRange that a Range header requests from a file of `size` bytes.

    Returns None when the header is missing, malformed, uses another unit or lists several
    ranges: the caller then sends the whole file. Raises RangeNotSatisfiable when the range
    starts at or after the end of the file, or asks for a suffix of zero bytes.
    """
    if not header:
        return None
    match = _SINGLE_RANGE.fullmatch(header.strip())
    if match is None:
        return None
    first_digits, last_digits = match.groups()

    if not first_digits:
        if not last_digits:
            return None
        # "bytes=-n": the last n bytes of the file.
        suffix_length = _position(last_digits)
        if suffix_length == 0 or size == 0:
            raise RangeNotSatisfiable
        return ByteRange(max(size - suffix_length, 0), size - 1)

    first = _position(first_digits)
    last = _position(last_digits) if last_digits else BEYOND_ANY_FILE
    if last < first:
        # RFC 9110 calls "bytes=5-2" invalid, not unsatisfiable, so the header is ignored.
        return None
    if first >= size:
        raise RangeNotSatisfiable
    return ByteRange(first, min(last, size - 1))


def _etag(stat):
    # A rewritten file gets a new modification time (in nanoseconds) and usually a new size, so
    # the tag can serve as a strong validator for If-Range without reading the file.
    # NOTE: on a file system with coarse time stamps, a same-size rewrite within one tick keeps
    # the tag.
    return quote_etag(f"{stat.st_size:x}-{stat.st_mtime_ns:x}")


def _if_range_matches(request, etag, last_modified):
    """Return whether the Range header applies: no If-Range, or one that matches the file."""
    condition = request.headers.get("If-Range")
    if condition is None:
        return True
    condition = condition.strip()
    if condition.startswith('"'):
        return condition == etag
    # A date matches only when it equals Last-Modified exactly (RFC 9110, section 13.1.5).
    return parse_http_date_safe(condition) == last_modified


def _read_range(path, byte_range):
    with path.open("rb") as file:
        file.seek(byte_range.first)
        remaining = byte_range.length
        while remaining > 0:
            chunk = file.read(min(CHUNK_SIZE, remaining))
            if not chunk:
                # The file shrank while it was being sent. Stop rather than pad the body.
                return
            remaining -= len(chunk)
            yield chunk


def file_response(request, path, content_type):
    """Build the response to a GET or HEAD of one archive file, honouring Range and validators.

    The caller has already checked that the user may read the file.
    """
    stat = path.stat()
    size = stat.st_size
    etag = _etag(stat)
    last_modified = int(stat.st_mtime)

    response = get_conditional_response(request, etag=etag, last_modified=last_modified)
    if response is None:
        try:
            byte_range = None
            if _if_range_matches(request, etag, last_modified):
                byte_range = parse_range(request.headers.get("Range"), size)
        except RangeNotSatisfiable:
            response = HttpResponse(status=416, content_type="text/plain; charset=utf-8")
            response.content = f"The requested range is not inside this {size}-byte file.\n"
            response["Content-Range"] = f"bytes */{size}"
        else:
            response = _content_response(request, path, content_type, size, byte_range)

    response["Accept-Ranges"] = "bytes"
    response["ETag"] = etag
    response["Last-Modified"] = http_date(last_modified)
    response["X-Content-Type-Options"] = "nosniff"
    # The file is behind a permission check, so shared caches must not keep a copy.
    response["Cache-Control"] = "private"
    return response


def _content_response(request, path, content_type, size, byte_range):
    if request.method == "HEAD":
        response = HttpResponse(content_type=content_type)
    elif byte_range is None:
        # FileResponse closes the file when the response is finished.
        response = FileResponse(path.open("rb"), content_type=content_type)  # noqa: SIM115
    else:
        response = StreamingHttpResponse(_read_range(path, byte_range), content_type=content_type)

    if byte_range is None:
        response["Content-Length"] = str(size)
    else:
        response.status_code = 206
        response["Content-Range"] = f"bytes {byte_range.first}-{byte_range.last}/{size}"
        response["Content-Length"] = str(byte_range.length)
    return response
