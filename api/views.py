"""The JSON API under /api/v1/. Natural keys in every URL (study nicknames, datman IDs, scan
names); PUT is an idempotent upsert that returns `"changed": false` when nothing changed.

Every read starts from `accounts.permissions.visible_*` through `api.permissions`, and every
QC write goes through `qc.services`.
"""

import logging

from django.db import IntegrityError, transaction
from django.db.models import Prefetch, Q
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from api import permissions, serializers
from api.errors import ApiError
from qc import exports, services
from qc.models import GoldStandard, HeaderDiff, QCState, ScanReview, with_qc_state
from qc.search import scan_name_of
from studies.datman_ids import IdError, ScanName, parse_filename
from studies.models import ExpectedScan, Scan, Session, Study, StudySite, Timepoint

logger = logging.getLogger(__name__)

ERRORS = {
    401: OpenApiResponse(serializers.ErrorSerializer, description="Not authenticated."),
    403: OpenApiResponse(serializers.ErrorSerializer, description="Role too low."),
    404: OpenApiResponse(serializers.ErrorSerializer, description="Not found or not visible."),
    422: OpenApiResponse(serializers.ErrorSerializer, description="Invalid value."),
}


def _responses(**ok):
    return {**{int(code): body for code, body in ok.items()}, **ERRORS}


def _query_bool(request, name, default=False):
    """Read a boolean query parameter strictly: only `true` and `false` are accepted."""
    value = request.query_params.get(name)
    if value is None or value == "":
        return default
    if value in ("true", "false"):
        return value == "true"
    raise ApiError(
        "invalid_parameter",
        f"Query parameter {name}={value!r} is not a boolean; use {name}=true or {name}=false.",
    )


def _query_text(request, name):
    """Read a text query parameter, stripped; '' when absent. NUL characters are refused,
    because no name in qcdash contains one and PostgreSQL cannot compare text with them."""
    value = request.query_params.get(name, "").strip()
    if "\x00" in value:
        raise ApiError(
            "invalid_parameter",
            f"Query parameter {name}={value!r} contains a NUL character; remove it.",
        )
    return value


def _bool_parameter(name, description):
    return OpenApiParameter(name, OpenApiTypes.BOOL, description=description)


def _body(serializer_class, request):
    if not isinstance(request.data, dict):
        raise ApiError(
            "invalid_body",
            f"The request body must be a JSON object, not {type(request.data).__name__}.",
        )
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


# --- Studies --------------------------------------------------------------------------------


def _studies_with_sites(studies, user):
    study_sites = StudySite.objects.select_related("site").prefetch_related(
        "alt_codes",
        Prefetch("expected_scans", queryset=ExpectedScan.objects.select_related("scantype")),
    )
    studies = studies.prefetch_related(
        Prefetch("study_sites", queryset=study_sites, to_attr="all_study_sites")
    ).order_by("nickname")
    for study in studies:
        site_ids = permissions.allowed_site_ids(user, study)
        study.site_list = [
            study_site
            for study_site in study.all_study_sites
            if site_ids is None or study_site.site_id in site_ids
        ]
        yield study


class StudyListView(APIView):
    @extend_schema(
        summary="List the studies you may see",
        parameters=[
            OpenApiParameter("code", str, description="Only studies with this study code."),
            OpenApiParameter("site", str, description="Only studies at this site."),
        ],
        responses=_responses(**{"200": serializers.StudySerializer(many=True)}),
    )
    def get(self, request):
        studies = permissions.visible_studies(request.user)
        code = _query_text(request, "code")
        site = _query_text(request, "site")
        if code:
            studies = studies.filter(
                Q(study_sites__code__iexact=code) | Q(study_sites__alt_codes__code__iexact=code)
            )
        if site:
            studies = studies.filter(study_sites__site__name__iexact=site)
        studies = list(_studies_with_sites(studies.distinct(), request.user))
        return Response(serializers.StudySerializer(studies, many=True).data)


class StudyDetailView(APIView):
    @extend_schema(
        summary="A study and its configuration",
        responses=_responses(**{"200": serializers.StudySerializer}),
    )
    def get(self, request, nickname):
        study = permissions.get_study(request.user, nickname)
        study = next(_studies_with_sites(Study.objects.filter(pk=study.pk), request.user))
        return Response(serializers.StudySerializer(study).data)


class TimepointPagination(LimitOffsetPagination):
    default_limit = 500
    max_limit = 5000


def _timepoints_for_api(timepoints):
    sessions = Session.objects.select_related("sign_off__reviewer").order_by("number")
    return timepoints.select_related("study", "study_site__site").prefetch_related(
        Prefetch("sessions", queryset=sessions)
    )


class StudyTimepointsView(APIView):
    @extend_schema(
        summary="The timepoints of a study",
        parameters=[
            OpenApiParameter("site", str, description="Only timepoints of this site."),
            _bool_parameter("phantoms", "Include phantoms (default true)."),
            OpenApiParameter("limit", int, description="Page size, at most 5000 (default 500)."),
            OpenApiParameter("offset", int, description="Rows to skip."),
        ],
        responses=_responses(**{"200": serializers.TimepointSerializer(many=True)}),
    )
    def get(self, request, nickname):
        study = permissions.get_study(request.user, nickname)
        timepoints = permissions.visible_timepoints(request.user).filter(study=study)
        site = _query_text(request, "site")
        if site:
            timepoints = timepoints.filter(study_site__site__name__iexact=site)
        if not _query_bool(request, "phantoms", default=True):
            timepoints = timepoints.filter(is_phantom=False)
        paginator = TimepointPagination()
        page = paginator.paginate_queryset(
            _timepoints_for_api(timepoints).order_by("name"), request, view=self
        )
        data = serializers.TimepointSerializer(page, many=True).data
        return paginator.get_paginated_response(data)


class TimepointDetailView(APIView):
    @extend_schema(
        summary="A timepoint and its sessions",
        responses=_responses(**{"200": serializers.TimepointSerializer}),
    )
    def get(self, request, name):
        timepoint = permissions.get_timepoint(
            request.user, name, queryset=_timepoints_for_api(Timepoint.objects.all())
        )
        return Response(serializers.TimepointSerializer(timepoint).data)


# --- Sessions -------------------------------------------------------------------------------


def _session_for_api(user, session_id):
    session = permissions.get_session(user, session_id)
    return (
        Session.objects.select_related(
            "timepoint__study", "timepoint__study_site__site", "sign_off__reviewer"
        )
        .prefetch_related(Prefetch("scans", queryset=Scan.objects.order_by("series", "name")))
        .get(pk=session.pk)
    )


def _study_site_for(user, ident):
    """Return the StudySite of the ID's study code and site that the user may see."""
    code, site = ident.study.upper(), ident.site.upper()
    candidates = StudySite.objects.select_related("study", "site").filter(site__name__iexact=site)
    candidates = candidates.filter(Q(code__iexact=code) | Q(alt_codes__code__iexact=code))
    for study_site in candidates.distinct():
        if permissions.may_see(user, study_site.study, study_site.site):
            return study_site
    raise ApiError(
        "unknown_study_site",
        f"Study code {code} at site {site} (from {ident.session_id}) matches no study site you "
        f"may see. Fix the ID, or add the site and code to the study's datman config and run "
        f"sync_config.",
    )


class SessionView(APIView):
    @extend_schema(
        summary="A session with its sign-off and scans",
        responses=_responses(**{"200": serializers.SessionSerializer}),
    )
    def get(self, request, session_id):
        session = _session_for_api(request.user, session_id)
        return Response(serializers.SessionSerializer(session).data)

    @extend_schema(
        summary="Create or update a session (and its timepoint)",
        request=serializers.SessionUpsertSerializer,
        responses=_responses(
            **{
                "200": serializers.SessionUpsertResultSerializer,
                "201": serializers.SessionUpsertResultSerializer,
                "409": serializers.ErrorSerializer,
            }
        ),
    )
    def put(self, request, session_id):
        ident = permissions.parse_session(session_id)
        data = _body(serializers.SessionUpsertSerializer, request)
        study_site = _study_site_for(request.user, ident)
        permissions.require_record_sessions(request.user, study_site.study, study_site.site)

        with transaction.atomic():
            # all_objects, so a deleted timepoint or session is neither created again nor shown.
            timepoint, timepoint_created = Timepoint.all_objects.select_for_update().get_or_create(
                name=ident.timepoint_id,
                defaults={
                    "study": study_site.study,
                    "study_site": study_site,
                    "is_phantom": ident.is_phantom,
                },
            )
            if timepoint.study_site_id != study_site.pk:
                raise ApiError(
                    "timepoint_conflict",
                    f"Timepoint {timepoint.name} already belongs to {timepoint.study} at "
                    f"{timepoint.study_site.site}; check the study code of {ident.session_id}.",
                    status_code=status.HTTP_409_CONFLICT,
                )
            _reject_deleted(timepoint, "timepoint")
            changed = _update_fields(timepoint, data.get("timepoint", {}))
            session, created = Session.all_objects.get_or_create(
                timepoint=timepoint, number=ident.session_number
            )
            _reject_deleted(session, "session")
            if "acquired_on" in data:
                changed |= _update_fields(session, {"acquired_on": data["acquired_on"]})
        created = created or timepoint_created
        if created or changed:
            logger.info(
                "session %s %s through the API by %s",
                ident.session_id,
                "created" if created else "updated",
                request.user,
            )
        body = {
            "changed": created or changed,
            "created": created,
            "session": serializers.SessionSerializer(
                _session_for_api(request.user, ident.session_id)
            ).data,
        }
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


def _reject_deleted(obj, kind):
    """Raise a 409 ApiError when a dashboard admin deleted the timepoint, session or scan."""
    if obj.is_deleted:
        raise ApiError(
            "deleted",
            f"The {kind} {obj} was deleted by a dashboard admin, so it is left as it is and "
            f"hidden. Ask a dashboard admin to restore it in the admin site if it is needed.",
            status_code=status.HTTP_409_CONFLICT,
        )


def _update_fields(instance, values):
    """Set the values that differ and save only those; return whether anything changed."""
    changed = [name for name, value in values.items() if getattr(instance, name) != value]
    for name in changed:
        setattr(instance, name, values[name])
    if changed:
        instance.save(update_fields=changed)
    return bool(changed)


# --- Scans ----------------------------------------------------------------------------------


def _scans_for_api():
    return with_qc_state(
        Scan.objects.select_related(
            "scantype",
            "source",
            "session__timepoint__study",
            "session__timepoint__study_site__site",
        )
    )


def _scan_name(text):
    try:
        return scan_name_of(text)
    except IdError as error:
        raise ApiError("invalid_id", str(error)) from error


class ScanView(APIView):
    @extend_schema(
        summary="A scan with its sidecar and current QC state",
        responses=_responses(**{"200": serializers.ScanSerializer}),
    )
    def get(self, request, name):
        scan = permissions.get_scan(request.user, _scan_name(name), queryset=_scans_for_api())
        return Response(serializers.ScanSerializer(scan).data)

    @extend_schema(
        summary="Create or update a scan by its file stem",
        description="The URL names the scan by its file stem with description "
        "(`<session ID>_<TAG>_<SERIES>_<DESCRIPTION>`). The session must exist.",
        request=serializers.ScanUpsertSerializer,
        responses=_responses(
            **{
                "200": serializers.ScanUpsertResultSerializer,
                "201": serializers.ScanUpsertResultSerializer,
                "409": serializers.ErrorSerializer,
            }
        ),
    )
    def put(self, request, name):
        parsed = self._parse_stem(name)
        data = _body(serializers.ScanUpsertSerializer, request)
        ident = parsed.ident.upper()
        scan_name = ScanName(ident, parsed.tag, parsed.series, parsed.description).scan_name
        study_site = _study_site_for(request.user, ident)
        try:
            session = permissions.get_session(request.user, ident.session_id)
        except ApiError:
            raise ApiError(
                "unknown_session",
                f"Session {ident.session_id} of scan {scan_name} does not exist; create it "
                f"first with PUT /api/v1/sessions/{ident.session_id}/.",
            ) from None
        permissions.require_record_sessions(request.user, study_site.study, study_site.site)
        scantype = self._expected_scantype(study_site, parsed.tag, scan_name)

        values = dict(data)
        if "conversion_errors" in values:
            values["conversion_errors"] = values["conversion_errors"] or ""
        stem = name.strip()
        try:
            with transaction.atomic():
                scan, created = Scan.all_objects.select_for_update().get_or_create(
                    name=scan_name,
                    defaults={
                        "session": session,
                        "scantype": scantype,
                        "series": parsed.series_number,
                        "description": parsed.description,
                        "file_stem": stem,
                        **values,
                    },
                )
                changed = False
                if not created:
                    _reject_deleted(scan, "scan")
                    self._check_same_series(scan, stem)
                    changed = _update_fields(scan, values)
        except IntegrityError as error:
            raise ApiError(
                "conflict",
                f"Scan {scan_name} could not be saved: {error}",
                status_code=status.HTTP_409_CONFLICT,
            ) from error
        if created or changed:
            logger.info(
                "scan %s %s through the API by %s",
                scan_name,
                "created" if created else "updated",
                request.user,
            )
        scan = _scans_for_api().get(pk=scan.pk)
        body = {
            "changed": created or changed,
            "created": created,
            "scan": serializers.ScanSerializer(scan).data,
        }
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    @staticmethod
    def _parse_stem(name):
        try:
            parsed = parse_filename(name)
        except IdError as error:
            raise ApiError(
                "invalid_id",
                f"{error} PUT names a scan by its file stem with description.",
            ) from error
        if parsed.extension:
            raise ApiError(
                "invalid_id",
                f"{name!r} ends in {parsed.extension}; name the scan by its file stem, without "
                f"the extension.",
            )
        try:
            parsed.ident.session_number  # noqa: B018 - raises IdError for a bad session
        except IdError as error:
            raise ApiError("invalid_id", str(error)) from error
        return parsed

    @staticmethod
    def _expected_scantype(study_site, tag, scan_name):
        expected = (
            ExpectedScan.objects.filter(study_site=study_site, scantype__tag=tag)
            .select_related("scantype")
            .first()
        )
        if expected is None:
            raise ApiError(
                "tag_not_expected",
                f"Tag {tag} of scan {scan_name} is not expected at {study_site.study} site "
                f"{study_site.site}. Add it to ExportInfo of the site in the study's datman "
                f"config and run sync_config.",
            )
        return expected.scantype

    @staticmethod
    def _check_same_series(scan, stem):
        if scan.file_stem != stem:
            raise ApiError(
                "stem_conflict",
                f"Scan {scan.name} already exists with the file stem {scan.file_stem}; a series "
                f"number is used once per session and tag, so {stem} cannot be another file.",
                status_code=status.HTTP_409_CONFLICT,
            )


# --- QC -------------------------------------------------------------------------------------


def _qc_body(scan):
    review = ScanReview.objects.newest_for(scan.review_target_id).select_related("reviewer")
    review = review.first()
    source = scan.source if scan.source_id else scan
    return {
        "scan": scan.name,
        "state": review.state if review else QCState.NEW.value,
        "comment": review.comment if review else "",
        "reviewer": review.reviewer.username if review else None,
        "reviewed_at": review.created_at if review else None,
        "reviewed_scan": source.name,
        "review_id": review.pk if review else None,
    }


def _review_conflict(scan, current, expected_review_id):
    if current["review_id"] is None:
        newest = "has no review"
    else:
        reviewed_at = timezone.localtime(current["reviewed_at"])
        newest = (
            f"has newest review {current['review_id']} ({current['state']} by "
            f"{current['reviewer']} at {reviewed_at:%Y-%m-%d %H:%M %Z})"
        )
    expected = "none" if expected_review_id is None else expected_review_id
    return ApiError(
        "review_conflict",
        f"Scan {scan.name} {newest}, but the request expected {expected}; nothing was saved. "
        f"GET the QC state again and send its review_id.",
        status_code=status.HTTP_409_CONFLICT,
    )


class ScanQCView(APIView):
    @extend_schema(
        summary="The current QC state of a scan",
        responses=_responses(**{"200": serializers.QCStateSerializer}),
    )
    def get(self, request, name):
        scan = permissions.get_scan(request.user, _scan_name(name), queryset=_scans_for_api())
        return Response(serializers.QCStateSerializer(_qc_body(scan)).data)

    @extend_schema(
        summary="Set the QC state of a scan",
        description="Records a decision unless the scan already has this state and comment. "
        "Flagging and blacklisting need a comment.",
        request=serializers.QCStateUpdateSerializer,
        responses=_responses(**{"200": serializers.QCStateResultSerializer}),
    )
    def put(self, request, name):
        scan = permissions.get_scan(request.user, _scan_name(name), queryset=_scans_for_api())
        timepoint = scan.session.timepoint
        permissions.require_review(request.user, timepoint.study, timepoint.study_site.site)
        data = _body(serializers.QCStateUpdateSerializer, request)
        state, comment = data["state"], data.get("comment", "")

        expected_review_id = data.get("expected_review_id", services.ANY_REVIEW)

        current = _qc_body(scan)
        changed = current["state"] != state or current["comment"] != comment.strip()
        stale = expected_review_id is not services.ANY_REVIEW and (
            expected_review_id != current["review_id"]
        )
        if stale and not changed:
            # Nothing would be written, but the caller should still learn that it acted on an
            # outdated state.
            raise _review_conflict(scan, current, expected_review_id)
        if changed:
            try:
                services.review_scan(
                    scan,
                    reviewer=request.user,
                    state=state,
                    comment=comment,
                    expected_review_id=expected_review_id,
                )
            except services.ReviewConflict as conflict:
                raise _review_conflict(scan, _qc_body(scan), expected_review_id) from conflict
            except services.QCError as error:
                raise ApiError("invalid_decision", str(error)) from error
            current = _qc_body(scan)
        return Response(serializers.QCStateResultSerializer({**current, "changed": changed}).data)


def _sign_off_body(session, approved=()):
    sign_off = serializers._sign_off(session)
    return {
        "session": session.name,
        "signed_off": sign_off is not None,
        "reviewer": sign_off.reviewer.username if sign_off else None,
        "signed_off_at": sign_off.created_at if sign_off else None,
        "approved_scans": list(approved),
    }


class SessionSignOffView(APIView):
    @extend_schema(
        summary="Whether a session is signed off",
        responses=_responses(**{"200": serializers.SessionSignOffSerializer}),
    )
    def get(self, request, session_id):
        session = _session_for_api(request.user, session_id)
        return Response(serializers.SessionSignOffSerializer(_sign_off_body(session)).data)

    @extend_schema(
        summary="Sign off a session",
        description="Signing off approves the session's new scans, so each must be listed in "
        "`approve_scans` (or `approve_all_new` set). Signing off a signed-off session changes "
        "nothing.",
        request=serializers.SignOffRequestSerializer,
        responses=_responses(
            **{
                "200": serializers.SignOffResultSerializer,
                "201": serializers.SignOffResultSerializer,
                "409": serializers.ErrorSerializer,
            }
        ),
    )
    def post(self, request, session_id):
        session = _session_for_api(request.user, session_id)
        timepoint = session.timepoint
        permissions.require_review(request.user, timepoint.study, timepoint.study_site.site)
        data = _body(serializers.SignOffRequestSerializer, request)
        if serializers._sign_off(session) is not None:
            body = {**_sign_off_body(session), "changed": False}
            return Response(serializers.SignOffResultSerializer(body).data)

        new_scans = services.new_scans(session)
        new_names = {scan.name: scan.pk for scan in new_scans}
        listed = set(data["approve_scans"])
        not_new = sorted(listed - set(new_names))
        if not_new:
            raise ApiError(
                "not_a_new_scan",
                f"{', '.join(not_new)} is not a new scan of session {session.name}; list only "
                f"the scans that are new ({', '.join(new_names) or 'none'}).",
            )
        approve = new_names if data["approve_all_new"] else {n: new_names[n] for n in listed}
        try:
            services.sign_off_session(
                session, reviewer=request.user, approve_scan_ids=approve.values()
            )
        except services.QCError as error:
            raise ApiError(
                "sign_off_rejected", str(error), status_code=status.HTTP_409_CONFLICT
            ) from error
        session = _session_for_api(request.user, session.name)
        body = {**_sign_off_body(session, sorted(approve)), "changed": True}
        return Response(
            serializers.SignOffResultSerializer(body).data, status=status.HTTP_201_CREATED
        )


# --- datman read-back -----------------------------------------------------------------------


def _subject_filter(request, study):
    text = _query_text(request, "subject")
    if not text:
        return None
    try:
        return exports.SubjectFilter.parse(text)
    except exports.ExportError as error:
        raise ApiError("invalid_id", str(error)) from error


MAPPING = {"type": "object", "additionalProperties": {"type": "string"}}


class BlacklistView(APIView):
    @extend_schema(
        summary="Blacklisted scans of a study: {file stem: comment}",
        description="As datman's read_blacklist returns it; with bids=true keyed by BIDS name "
        "(scans without one are left out).",
        parameters=[
            OpenApiParameter("subject", str, description="A timepoint, session or phantom ID."),
            _bool_parameter("bids", "Key by BIDS name."),
        ],
        responses=_responses(**{"200": OpenApiResponse(MAPPING)}),
    )
    def get(self, request, nickname):
        study = permissions.get_study(request.user, nickname)
        bids = _query_bool(request, "bids")
        scans = exports.blacklisted_scans(
            permissions.visible_scans(request.user), study, subject=_subject_filter(request, study)
        )
        return Response(dict(exports.blacklist_pairs(scans, bids=bids)))


class ChecklistView(APIView):
    @extend_schema(
        summary="Sign-off checklist of a study: {timepoint: reviewers or ''}",
        description="As datman's read_checklist returns it: a timepoint maps to the reviewers "
        "who signed off its sessions when every session is signed off, else to ''. Phantoms "
        "are left out.",
        parameters=[_bool_parameter("bids", "Key by BIDS subject and session.")],
        responses=_responses(**{"200": OpenApiResponse(MAPPING)}),
    )
    def get(self, request, nickname):
        study = permissions.get_study(request.user, nickname)
        bids = _query_bool(request, "bids")
        entries = exports.checklist_entries(permissions.visible_timepoints(request.user), study)
        return Response(dict(exports.checklist_pairs(entries, bids=bids)))


class SubjectMetadataView(APIView):
    @extend_schema(
        summary="QC'd timepoints with their blacklisted file stems",
        description="As datman's get_subject_metadata returns it: {timepoint: [file stems]} for "
        "timepoints whose sessions are all signed off (phantoms always), or every timepoint "
        "with allow_partial=true.",
        parameters=[_bool_parameter("allow_partial", "Include timepoints not fully signed off.")],
        responses=_responses(
            **{
                "200": OpenApiResponse(
                    {
                        "type": "object",
                        "additionalProperties": {"type": "array", "items": {"type": "string"}},
                    }
                )
            }
        ),
    )
    def get(self, request, nickname):
        study = permissions.get_study(request.user, nickname)
        metadata = exports.subject_metadata(
            permissions.visible_timepoints(request.user),
            permissions.visible_scans(request.user),
            study,
            allow_partial=_query_bool(request, "allow_partial"),
        )
        return Response(dict(exports.metadata_pairs(metadata)))


# --- Compliance (read only) -----------------------------------------------------------------


class GoldStandardListView(APIView):
    @extend_schema(
        summary="Gold standards of a study, newest first",
        parameters=[
            OpenApiParameter("site", str, description="Only this site."),
            OpenApiParameter("tag", str, description="Only this tag."),
        ],
        responses=_responses(**{"200": serializers.GoldStandardSerializer(many=True)}),
    )
    def get(self, request, nickname):
        study = permissions.get_study(request.user, nickname)
        standards = GoldStandard.objects.filter(study=study).select_related("site", "scantype")
        site_ids = permissions.allowed_site_ids(request.user, study)
        if site_ids is not None:
            standards = standards.filter(site_id__in=site_ids)
        site = _query_text(request, "site")
        tag = _query_text(request, "tag")
        if site:
            standards = standards.filter(site__name__iexact=site)
        if tag:
            standards = standards.filter(scantype__tag=tag)
        standards = standards.newest_first()[:1000]
        return Response(serializers.GoldStandardSerializer(standards, many=True).data)


class HeaderDiffView(APIView):
    @extend_schema(
        summary="The current header diff of a scan against its gold standard",
        responses=_responses(**{"200": serializers.HeaderDiffSerializer}),
    )
    def get(self, request, name):
        scan = permissions.get_scan(request.user, _scan_name(name))
        diff = HeaderDiff.objects.current().filter(scan=scan).select_related("scan").first()
        if diff is None:
            raise permissions.not_found(f"Scan {scan.name} has no header diff yet.")
        return Response(serializers.HeaderDiffSerializer(diff).data)
