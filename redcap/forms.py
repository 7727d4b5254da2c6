"""Input of the REDCap pages: the trigger body, the link and dismiss forms, the admin form."""

import json
import re
from dataclasses import dataclass
from urllib.parse import parse_qsl

from django import forms
from django.core.exceptions import ValidationError
from django.db import models

from redcap.models import RedcapConfig, is_api_token, new_trigger_secret, normalise_server_url
from redcap.services import MAX_DISMISSAL_REASON_LENGTH

# REDCap names instruments and events with lower-case letters, digits and underscores.
_REDCAP_NAME = re.compile(r"[a-z0-9_]{1,100}")
_PROJECT_ID = re.compile(r"[0-9]{1,10}")
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
# A Data Entry Trigger has 8 to 10 fields; more than this is not REDCap.
MAX_TRIGGER_FIELDS = 50
MAX_RECORD_ID_LENGTH = 100


class TriggerError(ValueError):
    """A trigger body that is not a valid Data Entry Trigger; the message is a short reason."""


@dataclass(frozen=True)
class TriggerPayload:
    """The fields of a Data Entry Trigger that decide what to fetch."""

    project_id: int
    instrument: str
    record_id: str
    event_name: str


def parse_trigger(body, content_type):
    """Parse and check a Data Entry Trigger body (form-encoded UTF-8), or raise TriggerError.

    Only the fields that decide what to fetch are read: project_id, instrument, record and
    redcap_event_name. The messages never repeat the submitted values.
    """
    if body and content_type != "application/x-www-form-urlencoded":
        raise TriggerError("expected an application/x-www-form-urlencoded body")
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(
            text,
            keep_blank_values=True,
            encoding="utf-8",
            errors="strict",
            max_num_fields=MAX_TRIGGER_FIELDS,
        )
    except UnicodeDecodeError:
        raise TriggerError("the body is not valid UTF-8") from None
    except ValueError:
        raise TriggerError(f"the body has more than {MAX_TRIGGER_FIELDS} fields") from None

    fields = {}
    for name, value in pairs:
        if "\x00" in name or "\x00" in value:
            raise TriggerError("the body contains a NUL character")
        if name in fields and name in ("project_id", "instrument", "record", "redcap_event_name"):
            raise TriggerError(f"field {name} is given more than once")
        fields[name] = value

    project_id = _required(fields, "project_id")
    if not _PROJECT_ID.fullmatch(project_id):
        raise TriggerError("project_id is not a number")
    instrument = _required(fields, "instrument")
    if not _REDCAP_NAME.fullmatch(instrument):
        raise TriggerError("instrument is not a REDCap instrument name")
    event_name = fields.get("redcap_event_name", "")
    if event_name and not _REDCAP_NAME.fullmatch(event_name):
        raise TriggerError("redcap_event_name is not a REDCap event name")
    # The record is checked last, so a trigger for an untracked instrument can be acknowledged
    # even when its record field is odd.
    record_id = fields.get("record", "").strip()
    return TriggerPayload(int(project_id), instrument, record_id, event_name)


def check_record_id(record_id):
    """Raise TriggerError unless `record_id` is a usable REDCap record name."""
    if not record_id:
        raise TriggerError("record is missing")
    if len(record_id) > MAX_RECORD_ID_LENGTH:
        raise TriggerError(f"record is longer than {MAX_RECORD_ID_LENGTH} characters")
    if _CONTROL_CHARACTERS.search(record_id):
        raise TriggerError("record contains control characters")


def _required(fields, name):
    value = fields.get(name, "").strip()
    if not value:
        raise TriggerError(f"{name} is missing")
    return value


class LinkRecordForm(forms.Form):
    """The session to link an unmatched record to."""

    session_id = forms.CharField(
        label="Session ID",
        max_length=128,
        help_text="The datman session ID, for example SPN01_CMH_0001_01_01.",
    )


class DismissSurveyForm(forms.Form):
    """The reason a session will have no survey."""

    reason = forms.CharField(
        max_length=MAX_DISMISSAL_REASON_LENGTH,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Say why no survey will come, for example: scan aborted before the survey.",
    )


def _https_url_fields(field, **kwargs):
    """Build the form field of a model field; an address typed without a scheme gets https."""
    if isinstance(field, models.URLField):
        kwargs["assume_scheme"] = "https"
    return field.formfield(**kwargs)


class RedcapConfigAdminForm(forms.ModelForm):
    """The admin form of a REDCap configuration: the token is replaced, never shown."""

    new_token = forms.CharField(
        label="Replace API token",
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Leave empty to keep the current token. REDCap tokens are 32 hexadecimal "
        "characters.",
    )
    regenerate_trigger_url = forms.BooleanField(
        label="Regenerate trigger URL",
        required=False,
        help_text="Make a new secret trigger URL; the old one stops working at once, so paste "
        "the new one into REDCap's Data Entry Trigger setting.",
    )

    class Meta:
        model = RedcapConfig
        formfield_callback = _https_url_fields
        # The token and the trigger secret are set through the two extra fields only.
        fields = [
            "url",
            "api_url",
            "project_id",
            "instrument",
            "record_key_field",
            "session_field",
            "date_field",
            "comment_field",
            "status_field",
            "complete_values",
            "user_field",
            "event_ids",
            "study_sites",
        ]
        error_messages = {
            "complete_values": {"required": 'Enter a list of values, for example ["2"].'},
        }

    def clean_new_token(self):
        token = self.cleaned_data["new_token"]
        if not token:
            if self.instance.pk is None:
                raise ValidationError("Enter the project's REDCap API token.")
            return ""
        if not is_api_token(token):
            raise ValidationError(
                f"This is not a REDCap API token: expected 32 hexadecimal characters, got "
                f"{len(token)} characters. Copy the token from REDCap's API page."
            )
        return token

    def clean_url(self):
        return normalise_server_url(self.cleaned_data["url"])

    def clean_complete_values(self):
        values = self.cleaned_data["complete_values"]
        if isinstance(values, str | int):
            values = [values]
        if not isinstance(values, list) or not values:
            raise ValidationError('Enter a list of values, for example ["2"].')
        return [str(value) for value in values]

    def clean_event_ids(self):
        event_ids = self.cleaned_data["event_ids"] or {}
        if not isinstance(event_ids, dict):
            raise ValidationError(
                "Enter a mapping of unique event names to event IDs, for example "
                '{"baseline_arm_1": 41}.'
            )
        cleaned = {}
        for name, event_id in event_ids.items():
            if not _REDCAP_NAME.fullmatch(str(name)):
                raise ValidationError(
                    f"{name!r} is not a unique event name (lower-case letters, digits and _)."
                )
            try:
                cleaned[str(name)] = int(event_id)
            except (TypeError, ValueError):
                raise ValidationError(
                    f"The event ID of {name!r} is {json.dumps(event_id)}; enter a whole number."
                ) from None
        return cleaned

    def save(self, commit=True):
        config = super().save(commit=False)
        if self.cleaned_data.get("new_token"):
            config.token = self.cleaned_data["new_token"]
        if self.cleaned_data.get("regenerate_trigger_url"):
            config.trigger_secret = new_trigger_secret()
        if commit:
            config.save()
            self.save_m2m()
        return config
