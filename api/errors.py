"""API errors: every error response body is `{"code": ..., "message": ...}`.

Validation errors are 422, with a code a pipeline can act on (`invalid_id`,
`unknown_study_site`, `tag_not_expected`, ...) and a message that names the bad value.
"""

from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response


class ApiError(exceptions.APIException):
    """An error with a machine-readable code; 422 unless another status is given."""

    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY

    def __init__(self, code, message, status_code=None):
        super().__init__(detail=message, code=code)
        self.error_code = code
        self.message = message
        if status_code is not None:
            self.status_code = status_code


def _flatten(detail, prefix=""):
    """Yield (field path, message) pairs from a DRF ValidationError detail."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = key if key != "non_field_errors" else ""
            path = f"{prefix}.{name}" if prefix and name else (name or prefix)
            yield from _flatten(value, path)
    elif isinstance(detail, list):
        for item in detail:
            yield from _flatten(item, prefix)
    else:
        yield prefix, str(detail)


def exception_handler(exc, context):
    """Turn every API exception into the `{"code", "message"}` body."""
    if isinstance(exc, ApiError):
        return Response({"code": exc.error_code, "message": exc.message}, status=exc.status_code)
    if isinstance(exc, exceptions.ValidationError):
        pairs = list(_flatten(exc.detail))
        message = "; ".join(f"{path}: {text}" if path else text for path, text in pairs)
        return Response(
            {"code": "invalid_field", "message": message or "The request body is invalid."},
            status=status.HTTP_422_UNPROCESSABLE_ENTITY,
        )
    if isinstance(exc, exceptions.ParseError):
        return Response(
            {"code": "invalid_json", "message": f"The request body is not JSON: {exc.detail}"},
            status=status.HTTP_400_BAD_REQUEST,
        )

    # Imported here because rest_framework.views imports the API settings, which name this
    # module's neighbours, so a module-level import is circular.
    from rest_framework.views import exception_handler as drf_exception_handler

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, Http404):
        code, message = "not_found", str(exc) or "Not found."
    elif isinstance(exc, PermissionDenied | exceptions.PermissionDenied):
        code, message = "permission_denied", str(getattr(exc, "detail", exc)) or "Not allowed."
    elif isinstance(exc, exceptions.APIException):
        code = exc.get_codes() if isinstance(exc.get_codes(), str) else exc.default_code
        message = str(exc.detail)
    else:
        code, message = "error", str(exc)
    response.data = {"code": code, "message": message}
    return response
