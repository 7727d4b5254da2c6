"""Redirect targets taken from the request (`next`, "return to") that stay on qcdash."""

from urllib.parse import unquote, urlsplit

from django.urls import Resolver404, resolve, reverse
from django.utils.http import url_has_allowed_host_and_scheme

# Unquoting stops after this many rounds; a target still changing after that is rejected.
MAX_UNQUOTE_ROUNDS = 3


def _unquoted_forms(url):
    forms = [url]
    for _ in range(MAX_UNQUOTE_ROUNDS):
        unquoted = unquote(url)
        if unquoted == url:
            return forms
        forms.append(unquoted)
        url = unquoted
    return None


def _is_logout(path):
    try:
        match = resolve(path)
    except Resolver404:
        return False
    return match.view_name == "account_logout"


def is_safe_redirect(url, request):
    """Whether `url` is a page of this site that a redirect may lead to.

    Only absolute paths on this host pass. External URLs, protocol-relative URLs (`//host`,
    `/\\host`), targets that become one of those once percent-decoded, and the sign-out page
    (which would sign the person out on arrival) fail.
    """
    if not isinstance(url, str) or not url.strip():
        return False
    forms = _unquoted_forms(url.strip())
    if forms is None:
        return False
    for form in forms:
        if not url_has_allowed_host_and_scheme(
            form, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            return False
        parts = urlsplit(form)
        if parts.scheme or parts.netloc or not parts.path.startswith("/"):
            return False
        if "\\" in form or form.startswith("//"):
            return False
        if _is_logout(parts.path):
            return False
    return True


def safe_redirect_url(request, url, fallback=None):
    """Return `url` when it is safe to redirect to, else `fallback` (the home page by default)."""
    if is_safe_redirect(url, request):
        return url.strip()
    return fallback if fallback is not None else reverse("qc:study_list")
