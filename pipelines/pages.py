"""Links to a study's pipeline pages, resolved for one study, timepoint, session or scan."""

from dataclasses import dataclass
from urllib.parse import quote

from django.urls import reverse

from accounts import permissions
from pipelines.models import PageScope, PipelinePage, path_template_problem


@dataclass
class PageLink:
    """One pipeline page as a link: `url` is empty when it cannot be opened, and `reason`
    then says why."""

    name: str
    url: str = ""
    reason: str = ""
    is_external: bool = False


def pages_by_scope(study):
    """Return the study's pipeline pages grouped by scope (one query)."""
    grouped = {scope: [] for scope in PageScope}
    for page in PipelinePage.objects.filter(study=study).order_by("position", "name"):
        grouped[PageScope(page.scope)].append(page)
    return grouped


def links(pages, user, study, *, timepoint=None, session=None, scan=None):
    """Resolve pages of one scope into PageLinks for the objects given.

    Archive reports are looked up on disk: a missing file or a folder without index.html is
    shown disabled with the reason, never as a broken link.
    """
    values = {"study": study.nickname}
    if timepoint is not None:
        values["timepoint"] = timepoint.name
    if session is not None:
        values["session"] = session.name
    if scan is not None:
        values["scan"] = scan.name
    return [_link(page, user, study, values) for page in pages]


def _link(page, user, study, values):
    if page.url_template:
        quoted = {name: quote(value, safe="") for name, value in values.items()}
        try:
            url = page.url_template.format_map(quoted)
        except (KeyError, ValueError, IndexError) as error:
            return PageLink(page.name, reason=f"Its URL template is invalid: {error}.")
        return PageLink(page.name, url=url, is_external=True)

    try:
        relative = page.path_template.format_map(values)
    except (KeyError, ValueError, IndexError) as error:
        return PageLink(page.name, reason=f"Its path template is invalid: {error}.")
    problem = path_template_problem(relative)
    if problem:
        return PageLink(page.name, reason=problem)
    relative, reason = _find_report(study, relative)
    if reason:
        return PageLink(page.name, reason=reason)
    if not permissions.can_view_file(user, study, relative):
        return PageLink(page.name, reason="This report is outside the sites you may see.")
    if page.allow_scripts and page.report_folder:
        url = reverse("pipelines:report", args=[page.pk, relative])
    else:
        url = reverse("studies:archive_file", args=[study.nickname, relative])
    return PageLink(page.name, url=url)


def _find_report(study, relative):
    """Return (the file's path relative to the archive, '') or ('', why it cannot be opened)."""
    root = study.archive_root
    path = root / relative
    try:
        if path.is_dir():
            path = path / "index.html"
            relative = f"{relative.rstrip('/')}/index.html"
        if path.resolve().is_relative_to(root.resolve()) and path.is_file():
            return relative, ""
    except OSError:
        pass
    return "", f"No report at {relative} in the archive yet."
