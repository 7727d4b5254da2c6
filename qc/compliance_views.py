"""Protocol-compliance pages: the study compliance summary, its CSV export, and the POST
actions that resolve a header deviation and dismiss a session's missing scans."""

import csv

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from accounts import permissions
from accounts.redirects import safe_redirect_url
from qc import compliance_repair, compliance_selectors, compliance_services
from qc.compliance import HeaderDiffStatus
from qc.compliance_forms import (
    DeviationResolutionForm,
    MissingScansDismissalForm,
    SidecarRepairForm,
)
from qc.compliance_selectors import NOT_COMPARED
from qc.models import DeviationDecision
from qc.services import QCError
from studies.datman_ids import IdError, parse_session_id
from studies.models import Scan

# Spreadsheet programs run a cell that starts with one of these as a formula.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

STATUS_COLUMNS = [
    (HeaderDiffStatus.MATCH.value, "Match"),
    (HeaderDiffStatus.MISMATCH.value, "Mismatch"),
    (HeaderDiffStatus.NO_GOLD_STANDARD.value, "No gold standard"),
    (HeaderDiffStatus.ERROR.value, "Error"),
    (NOT_COMPARED, "Not compared"),
]


def _study_scans(user, study):
    return permissions.visible_scans(user).filter(session__timepoint__study=study)


@login_required
@require_GET
def study_compliance(request, nickname):
    study = permissions.get_study(request.user, nickname)
    summary = compliance_selectors.study_compliance(_study_scans(request.user, study))
    for row in [*summary.rows, summary.totals]:
        row.status_counts = [row.counts[status] for status, _ in STATUS_COLUMNS]
    return render(
        request,
        "qc/compliance/study_compliance.html",
        {
            "study": study,
            "summary": summary,
            "status_columns": STATUS_COLUMNS,
            "trend_months": compliance_selectors.TREND_MONTHS,
        },
    )


class _EchoBuffer:
    """A file-like object whose write returns the text, so csv.writer can feed a stream."""

    def write(self, value):
        return value


def _spreadsheet_safe(cell):
    if isinstance(cell, str) and cell.startswith(FORMULA_PREFIXES):
        return f"'{cell}"
    return cell


@login_required
@require_GET
def study_compliance_csv(request, nickname):
    study = permissions.get_study(request.user, nickname)
    rows = compliance_selectors.compliance_csv_rows(_study_scans(request.user, study))
    writer = csv.writer(_EchoBuffer())
    lines = (writer.writerow([_spreadsheet_safe(cell) for cell in row]) for row in rows)
    return StreamingHttpResponse(
        lines,
        content_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{study.nickname}-compliance.csv"'},
    )


def _form_errors(form):
    return " ".join(message for messages_ in form.errors.values() for message in messages_)


@login_required
@require_POST
def resolve_deviation(request, name):
    scan = permissions.get_scan(
        request.user,
        name,
        queryset=Scan.objects.select_related(
            "session__timepoint__study", "session__timepoint__study_site"
        ),
    )
    timepoint = scan.session.timepoint
    permissions.require_resolve_deviations(
        request.user, timepoint.study, site=timepoint.study_site.site_id
    )
    form = DeviationResolutionForm(request.POST)

    if form.is_valid():
        data = form.cleaned_data
        try:
            resolution = compliance_services.resolve_deviation(
                scan,
                reviewer=request.user,
                header_diff_id=data["header_diff"],
                field_name=data["field"],
                decision=data["decision"],
                reason=data["reason"],
            )
        except QCError as error:
            messages.error(request, str(error))
        else:
            field = compliance_selectors.field_label(resolution.field)
            if resolution.decision == DeviationDecision.ACCEPTED:
                messages.success(request, f"Deviation of {field} in {scan.name} accepted.")
            else:
                messages.success(
                    request,
                    f"Deviation of {field} in {scan.name} confirmed as a protocol violation.",
                )
    else:
        messages.error(request, _form_errors(form))
    return redirect(
        safe_redirect_url(
            request, request.POST.get("next", ""), reverse("qc:scan_detail", args=[scan.name])
        )
    )


@login_required
@require_POST
def repair_sidecar(request, name):
    scan = permissions.get_scan(
        request.user,
        name,
        queryset=Scan.objects.select_related(
            "session__timepoint__study", "session__timepoint__study_site"
        ),
    )
    timepoint = scan.session.timepoint
    permissions.require_review(request.user, timepoint.study, site=timepoint.study_site.site_id)
    form = SidecarRepairForm(request.POST)

    if form.is_valid():
        try:
            repair = compliance_repair.repair_slice_timing(
                scan,
                reviewer=request.user,
                action=form.cleaned_data["action"],
                values_text=form.cleaned_data["values"],
            )
        except QCError as error:
            # The values as typed come back in the message, so nothing entered is lost.
            typed = form.cleaned_data["values"]
            suffix = f" You entered: {typed}" if typed else ""
            messages.error(request, f"{error}{suffix}")
        else:
            messages.success(
                request,
                f"SliceTiming of {scan.name}: {repair.get_action_display().lower()}. The "
                f"corrected sidecar was written to {repair.path}; the archive's file is unchanged.",
            )
    else:
        messages.error(request, _form_errors(form))
    return redirect(f"{reverse('qc:scan_detail', args=[scan.name])}#header-check")


@login_required
@require_POST
def dismiss_missing_scans(request, session_id):
    try:
        ident = parse_session_id(session_id)
    except IdError as error:
        raise Http404(str(error)) from error
    session = permissions.get_session(request.user, ident.timepoint_id, ident.session_number)
    timepoint = session.timepoint
    permissions.require_dismiss_missing_scans(
        request.user, timepoint.study, site=timepoint.study_site.site_id
    )
    form = MissingScansDismissalForm(request.POST)

    if form.is_valid():
        try:
            compliance_services.dismiss_missing_scans(
                session, reviewer=request.user, reason=form.cleaned_data["reason"]
            )
        except QCError as error:
            messages.error(request, str(error))
        else:
            messages.success(request, f"Missing scans of {session.name} dismissed.")
    else:
        messages.error(request, _form_errors(form))
    default = reverse("qc:timepoint_detail", args=[timepoint.name])
    return redirect(safe_redirect_url(request, request.POST.get("next", ""), default))
