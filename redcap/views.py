"""The Data Entry Trigger endpoint and the pages where people fix what the intake could not."""

import logging

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, HttpResponseBadRequest, HttpResponseNotFound
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from accounts import permissions
from accounts.redirects import safe_redirect_url
from redcap import selectors, services
from redcap.forms import (
    DismissSurveyForm,
    LinkRecordForm,
    TriggerError,
    check_record_id,
    parse_trigger,
)
from redcap.models import RedcapConfig, RedcapRecord, RedcapTrigger
from studies.datman_ids import IdError, parse_session_id

logger = logging.getLogger(__name__)

# A Data Entry Trigger is a few hundred bytes; anything near this limit is not from REDCap.
MAX_TRIGGER_BODY = 16 * 1024
ROWS_PER_PAGE = 50


class _PayloadTooLarge(HttpResponse):
    status_code = 413


def _unlogged(response):
    """Mark a response as logged, so Django's request logger does not log its URL.

    The URL contains the trigger secret, and this view logs its own warning without it.
    NOTE: web server access logs, and Django's log line for a GET (from require_POST), still
    contain the URL; regenerate the trigger URL in the admin if such a log leaks.
    """
    response._has_been_logged = True
    return response


@csrf_exempt
@require_POST
def trigger(request, secret):
    """Accept a REDCap Data Entry Trigger: store it, queue the fetch and respond at once.

    REDCap cannot sign its request, so the secret in the URL is the only credential. The posted
    fields only decide which record to fetch, and the survey values come from the API.
    """
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return _unlogged(
            HttpResponseBadRequest("Invalid Content-Length.", content_type="text/plain")
        )
    if length > MAX_TRIGGER_BODY:
        return _unlogged(
            _PayloadTooLarge(
                f"The body is larger than {MAX_TRIGGER_BODY} bytes.", content_type="text/plain"
            )
        )

    config = (
        RedcapConfig.objects.only("pk", "project_id", "instrument", "url")
        .filter(trigger_secret=secret)
        .first()
    )
    if config is None:
        return _unlogged(HttpResponseNotFound("Unknown trigger URL.", content_type="text/plain"))

    try:
        payload = parse_trigger(request.body, request.content_type)
        if payload.project_id != config.project_id:
            raise TriggerError("project_id does not match this trigger URL")
        if payload.instrument != config.instrument:
            services.count_untracked_trigger(config, payload.instrument)
            return HttpResponse("OK: instrument not tracked.", content_type="text/plain")
        check_record_id(payload.record_id)
    except TriggerError as error:
        logger.warning("REDCap trigger for configuration %s rejected: %s", config.pk, error)
        return _unlogged(
            HttpResponseBadRequest(f"Invalid trigger: {error}.", content_type="text/plain")
        )

    services.receive_trigger(config, record_id=payload.record_id, event_name=payload.event_name)
    return HttpResponse("OK", content_type="text/plain")


def _require_redcap_handler(user, study=None, site=None):
    if not permissions.can_handle_redcap(user, study, site):
        where = f" of {study}" if study is not None else ""
        raise PermissionDenied(f"You may not handle the REDCap records{where}; this needs an RA.")


def _handled_configs(user):
    """Configurations used by a study site where the user may handle REDCap records."""
    if permissions.is_dashboard_admin(user):
        return RedcapConfig.objects.all()
    return RedcapConfig.objects.filter(study_sites__in=permissions.redcap_study_sites(user))


@login_required
@require_GET
def unmatched_records(request):
    _require_redcap_handler(request.user)
    records = selectors.unmatched_records().filter(config__in=_handled_configs(request.user))
    page = Paginator(records, ROWS_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "redcap/unmatched_records.html", {"page": page, "area_tab": "unmatched"})


@login_required
@require_POST
def link_record(request, pk):
    _require_redcap_handler(request.user)
    records = RedcapRecord.objects.filter(config__in=_handled_configs(request.user))
    record = get_object_or_404(records.select_related("config"), pk=pk)
    form = LinkRecordForm(request.POST)
    if not form.is_valid():
        messages.error(request, f"Enter the session ID to link {record} to.")
        return redirect("redcap:unmatched_records")

    text = services.normalise_session_id(form.cleaned_data["session_id"])
    try:
        ident = parse_session_id(text)
    except IdError as error:
        messages.error(request, str(error))
        return redirect("redcap:unmatched_records")
    session = (
        permissions.visible_sessions(request.user)
        .select_related("timepoint__study", "timepoint__study_site")
        .filter(timepoint__name=ident.timepoint_id, number=ident.session_number)
        .first()
    )
    if session is None:
        messages.error(
            request,
            f"Session {ident.session_id} not found; import it first or check the ID.",
        )
        return redirect("redcap:unmatched_records")
    timepoint = session.timepoint
    _require_redcap_handler(request.user, timepoint.study, timepoint.study_site.site_id)

    try:
        services.link_record(record, session, user=request.user)
    except services.RedcapError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, f"{record} linked to session {session}.")
    return redirect("redcap:unmatched_records")


@login_required
@require_GET
def failed_triggers(request):
    _require_redcap_handler(request.user)
    triggers = RedcapTrigger.objects.for_failed_page().filter(
        config__in=_handled_configs(request.user)
    )
    page = Paginator(triggers, ROWS_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "redcap/failed_triggers.html", {"page": page, "area_tab": "failed"})


@login_required
@require_POST
def retry_trigger(request, pk):
    _require_redcap_handler(request.user)
    triggers = RedcapTrigger.objects.filter(config__in=_handled_configs(request.user))
    trigger = get_object_or_404(triggers, pk=pk)
    try:
        services.retry_trigger(trigger, user=request.user)
    except services.RedcapError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, f"The fetch of {trigger} was queued again.")
    return redirect("redcap:failed_triggers")


@login_required
@require_POST
def dismiss_survey(request, session_id):
    try:
        ident = parse_session_id(session_id)
    except IdError:
        raise Http404(f"No session {session_id}.") from None
    session = permissions.get_session(request.user, ident.timepoint_id, ident.session_number)
    timepoint = session.timepoint
    _require_redcap_handler(request.user, timepoint.study, timepoint.study_site.site_id)

    form = DismissSurveyForm(request.POST)
    error = ""
    if form.is_valid():
        try:
            services.dismiss_missing_survey(
                session, user=request.user, reason=form.cleaned_data["reason"]
            )
        except services.RedcapError as service_error:
            error = str(service_error)
    else:
        error = "A reason is required: say why this session has no survey."

    if request.headers.get("HX-Request") == "true":
        survey = selectors.surveys_for_sessions([session])[session.pk]
        context = {
            "survey": survey,
            "dismiss_error": error,
            "dismiss_form": form,
            "next_url": _safe_next(request),
        }
        return render(request, "redcap/_session_survey.html", context)

    if error:
        messages.error(request, error)
    else:
        messages.success(request, f"Missing survey of {session} dismissed.")
    return redirect(_safe_next(request))


def _safe_next(request):
    return safe_redirect_url(request, request.POST.get("next", ""))
