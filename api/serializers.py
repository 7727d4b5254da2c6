"""Request and response bodies of the API.

Response serializers read objects that the views preloaded (see the `select_related` and
`prefetch_related` calls there), so a list costs a fixed number of queries.
"""

import math

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from qc.models import QCState

MAX_TEXT_LENGTH = 5000


@extend_schema_field(OpenApiTypes.BOOL)
class StrictBooleanField(serializers.Field):
    """A JSON boolean. Unlike DRF's BooleanField, "yes", "1", 1 and "true" are rejected."""

    def to_internal_value(self, data):
        if isinstance(data, bool):
            return data
        raise serializers.ValidationError(f"{data!r} is not a JSON boolean; send true or false.")

    def to_representation(self, value):
        return bool(value)


class StrictCharField(serializers.CharField):
    """A JSON string: numbers and booleans are rejected instead of turned into text, and NUL
    characters are rejected because the database cannot store them."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            raise serializers.ValidationError(f"{data!r} is not a JSON string.")
        if "\x00" in data:
            raise serializers.ValidationError("The text contains a NUL character; remove it.")
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer: strings such as "3" and booleans are rejected."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            raise serializers.ValidationError(f"{data!r} is not a JSON integer.")
        return super().to_internal_value(data)


def _check_json_numbers(value, path="sidecar"):
    """Raise ValidationError when the JSON contains NaN or infinity, or a NUL in text."""
    if isinstance(value, float) and not math.isfinite(value):
        raise serializers.ValidationError(f"{path} is {value!r}; JSON numbers must be finite.")
    if isinstance(value, str) and "\x00" in value:
        raise serializers.ValidationError(f"{path} contains a NUL character; remove it.")
    if isinstance(value, dict):
        for key, item in value.items():
            if "\x00" in key:
                raise serializers.ValidationError(f"A key of {path} contains a NUL character.")
            _check_json_numbers(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_json_numbers(item, f"{path}[{index}]")


@extend_schema_field({"type": "object", "additionalProperties": True, "nullable": True})
class SidecarField(serializers.Field):
    """A dcm2niix sidecar: a JSON object, or null for none."""

    def to_internal_value(self, data):
        if data is not None and not isinstance(data, dict):
            raise serializers.ValidationError(
                f"The sidecar must be a JSON object of header fields or null, not {data!r}."
            )
        _check_json_numbers(data)
        return data

    def to_representation(self, value):
        return value


# --- Studies --------------------------------------------------------------------------------


class ExpectedScanSerializer(serializers.Serializer):
    tag = serializers.CharField(source="scantype.tag")
    count = serializers.IntegerField()
    phantom_count = serializers.IntegerField()
    qc_type = serializers.CharField(source="scantype.qc_type")
    pha_type = serializers.CharField(source="scantype.pha_type")


class StudySiteSerializer(serializers.Serializer):
    site = serializers.CharField(source="site.name")
    code = serializers.CharField()
    alt_codes = serializers.SerializerMethodField()
    uses_redcap = serializers.BooleanField()
    uses_tech_notes = serializers.BooleanField()
    xnat_archive = serializers.CharField()
    xnat_convention = serializers.CharField()
    xnat_url = serializers.CharField()
    expected_scans = ExpectedScanSerializer(many=True, source="expected_scans.all")

    def get_alt_codes(self, study_site) -> list[str]:
        return [alt.code for alt in study_site.alt_codes.all()]


class StudySerializer(serializers.Serializer):
    nickname = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    primary_contact = serializers.CharField()
    is_open = serializers.BooleanField()
    sites = StudySiteSerializer(many=True, source="site_list")


# --- Timepoints and sessions ----------------------------------------------------------------


class SignOffSerializer(serializers.Serializer):
    signed_off = serializers.BooleanField()
    reviewer = serializers.CharField(allow_null=True)
    signed_off_at = serializers.DateTimeField(allow_null=True)


class SessionSummarySerializer(serializers.Serializer):
    name = serializers.CharField()
    number = serializers.IntegerField()
    acquired_on = serializers.DateField(allow_null=True)
    signed_off = serializers.SerializerMethodField()
    signed_off_by = serializers.SerializerMethodField()

    def get_signed_off(self, session) -> bool:
        return _sign_off(session) is not None

    def get_signed_off_by(self, session) -> str | None:
        sign_off = _sign_off(session)
        return sign_off.reviewer.username if sign_off else None


def _sign_off(session):
    try:
        return session.sign_off
    except session._meta.model.sign_off.RelatedObjectDoesNotExist:
        return None


class TimepointSerializer(serializers.Serializer):
    name = serializers.CharField()
    study = serializers.CharField(source="study.nickname")
    site = serializers.CharField(source="study_site.site.name")
    is_phantom = serializers.BooleanField()
    bids_name = serializers.CharField()
    bids_session = serializers.CharField()
    kcni_name = serializers.CharField()
    sessions = SessionSummarySerializer(many=True, source="sessions.all")


class SessionSerializer(SessionSummarySerializer):
    timepoint = serializers.CharField(source="timepoint.name")
    study = serializers.CharField(source="timepoint.study.nickname")
    site = serializers.CharField(source="timepoint.study_site.site.name")
    is_phantom = serializers.BooleanField(source="timepoint.is_phantom")
    scans = serializers.SerializerMethodField()

    def get_scans(self, session) -> list[str]:
        return [scan.name for scan in session.scans.all()]


class TimepointFieldsSerializer(serializers.Serializer):
    bids_name = StrictCharField(max_length=64, allow_blank=True, required=False)
    bids_session = StrictCharField(max_length=32, allow_blank=True, required=False)
    kcni_name = StrictCharField(max_length=128, allow_blank=True, required=False)


class SessionUpsertSerializer(serializers.Serializer):
    """Body of `PUT sessions/{session_id}/`; a field left out keeps its value."""

    acquired_on = serializers.DateField(allow_null=True, required=False)
    timepoint = TimepointFieldsSerializer(required=False)


class SessionUpsertResultSerializer(serializers.Serializer):
    changed = serializers.BooleanField()
    created = serializers.BooleanField()
    session = SessionSerializer()


# --- Scans ----------------------------------------------------------------------------------


class ScanSerializer(serializers.Serializer):
    name = serializers.CharField()
    file_stem = serializers.CharField()
    study = serializers.CharField(source="session.timepoint.study.nickname")
    site = serializers.CharField(source="session.timepoint.study_site.site.name")
    timepoint = serializers.CharField(source="session.timepoint.name")
    session = serializers.CharField(source="session.name")
    tag = serializers.CharField(source="scantype.tag")
    series = serializers.IntegerField()
    description = serializers.CharField()
    bids_name = serializers.CharField()
    nifti_path = serializers.CharField()
    sidecar_path = serializers.CharField()
    sidecar = SidecarField()
    sidecar_modified_at = serializers.DateTimeField(allow_null=True)
    conversion_errors = serializers.CharField()
    volumes = serializers.IntegerField(allow_null=True)
    source = serializers.CharField(source="source.name", allow_null=True, default=None)
    qc_state = serializers.SerializerMethodField()

    def get_qc_state(self, scan) -> str:
        return getattr(scan, "qc_state", None) or QCState.NEW.value


class ScanUpsertSerializer(serializers.Serializer):
    """Body of `PUT scans/{file_stem}/`; a field left out keeps its value."""

    sidecar = SidecarField(required=False, allow_null=True)
    sidecar_path = StrictCharField(max_length=1024, allow_blank=True, required=False)
    sidecar_modified_at = serializers.DateTimeField(allow_null=True, required=False)
    nifti_path = StrictCharField(max_length=1024, allow_blank=True, required=False)
    conversion_errors = StrictCharField(
        allow_null=True, allow_blank=True, required=False, max_length=100_000
    )
    bids_name = StrictCharField(max_length=255, allow_blank=True, required=False)
    volumes = StrictIntegerField(min_value=0, max_value=2**31 - 1, allow_null=True, required=False)


class ScanUpsertResultSerializer(serializers.Serializer):
    changed = serializers.BooleanField()
    created = serializers.BooleanField()
    scan = ScanSerializer()


# --- QC -------------------------------------------------------------------------------------


class QCStateSerializer(serializers.Serializer):
    scan = serializers.CharField()
    state = serializers.ChoiceField(choices=QCState.choices)
    comment = serializers.CharField()
    reviewer = serializers.CharField(allow_null=True)
    reviewed_at = serializers.DateTimeField(allow_null=True)
    reviewed_scan = serializers.CharField(
        help_text="The scan the decision is stored on: the source scan of a linked scan."
    )
    review_id = serializers.IntegerField(
        allow_null=True,
        help_text="The id of the newest review (null when none); send it back as "
        "expected_review_id to make a PUT fail when someone reviewed the scan meanwhile.",
    )


class QCStateUpdateSerializer(serializers.Serializer):
    state = serializers.ChoiceField(
        choices=QCState.choices,
        error_messages={
            "invalid_choice": "{input!r} is not a QC state; use new, approved, flagged or "
            "blacklisted."
        },
    )
    comment = StrictCharField(
        allow_blank=True,
        required=False,
        default="",
        max_length=MAX_TEXT_LENGTH,
        trim_whitespace=True,
    )
    expected_review_id = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        help_text="The review_id a GET returned (null for a scan without reviews). When the "
        "scan's newest review is another one, nothing is saved and the answer is 409 "
        "review_conflict. Left out, the decision is recorded whatever came before.",
    )


class QCStateResultSerializer(QCStateSerializer):
    changed = serializers.BooleanField()


class SignOffRequestSerializer(serializers.Serializer):
    approve_scans = serializers.ListField(
        child=StrictCharField(max_length=255),
        required=False,
        default=list,
        max_length=1000,
        help_text="Names of the session's new scans to approve with the sign-off. The sign-off "
        "is rejected when the session has a new scan not listed here.",
    )
    approve_all_new = StrictBooleanField(
        required=False,
        default=False,
        help_text="Approve every scan that is new when the request arrives, listed or not.",
    )


class SessionSignOffSerializer(serializers.Serializer):
    session = serializers.CharField()
    signed_off = serializers.BooleanField()
    reviewer = serializers.CharField(allow_null=True)
    signed_off_at = serializers.DateTimeField(allow_null=True)
    approved_scans = serializers.ListField(child=serializers.CharField())


class SignOffResultSerializer(SessionSignOffSerializer):
    changed = serializers.BooleanField()


# --- Compliance (read only) -----------------------------------------------------------------


class GoldStandardSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    site = serializers.CharField(source="site.name")
    tag = serializers.CharField(source="scantype.tag")
    source_path = serializers.CharField()
    converter_version = serializers.CharField()
    created_at = serializers.DateTimeField()
    sidecar = SidecarField()
    bvals = serializers.JSONField(allow_null=True)


class HeaderDiffSerializer(serializers.Serializer):
    scan = serializers.CharField(source="scan.name")
    gold_standard = serializers.IntegerField(source="gold_standard_id", allow_null=True)
    status = serializers.CharField()
    diff = serializers.JSONField()
    deviating_fields = serializers.ListField(child=serializers.CharField())
    scan_converter = serializers.CharField()
    standard_converter = serializers.CharField()
    computed_at = serializers.DateTimeField()


class ErrorSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
