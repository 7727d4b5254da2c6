"""The filter form of the QC search page."""

from django import forms

from accounts import permissions
from qc.models import QCState
from qc.search import QCFilters, QCSearchMode
from studies.models import Scantype, Site

MAX_TEXT_FILTER_LENGTH = 200


class _TextFilterField(forms.CharField):
    """A free-text filter: control characters (NUL included) are dropped, not rejected."""

    def __init__(self, **kwargs):
        super().__init__(required=False, max_length=MAX_TEXT_FILTER_LENGTH, **kwargs)

    def to_python(self, value):
        text = super().to_python(value)
        return "".join(
            character for character in text if character.isprintable() or character == " "
        ).strip()


class QCSearchForm(forms.Form):
    """Filters of the QC search. Every field is optional; the form is read from GET."""

    mode = forms.ChoiceField(
        choices=[
            (QCSearchMode.CURRENT, "Current state of each scan"),
            (QCSearchMode.ALL, "Every decision"),
        ],
        required=False,
        initial=QCSearchMode.CURRENT,
        widget=forms.RadioSelect,
        label="Show",
        error_messages={"invalid_choice": "%(value)s is not a mode; choose current or all."},
    )
    study = forms.ModelChoiceField(
        queryset=None, required=False, to_field_name="nickname", empty_label="Any study"
    )
    site = forms.ModelChoiceField(
        queryset=None, required=False, to_field_name="name", empty_label="Any site"
    )
    tag = forms.ModelChoiceField(
        queryset=Scantype.objects.order_by("tag"),
        required=False,
        to_field_name="tag",
        empty_label="Any tag",
    )
    state = forms.MultipleChoiceField(
        choices=QCState.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="QC state",
        error_messages={
            "invalid_choice": "%(value)s is not a QC state; choose new, approved, flagged or "
            "blacklisted."
        },
    )
    comment = _TextFilterField(label="Comment contains")
    reviewer = _TextFilterField(label="Reviewer (username contains)")
    reviewed_from = forms.DateField(
        required=False,
        label="Reviewed from",
        widget=forms.DateInput(attrs={"type": "date"}),
        error_messages={"invalid": "Enter the start date as YYYY-MM-DD, for example 2024-01-31."},
    )
    reviewed_to = forms.DateField(
        required=False,
        label="Reviewed until",
        widget=forms.DateInput(attrs={"type": "date"}),
        error_messages={"invalid": "Enter the end date as YYYY-MM-DD, for example 2024-12-31."},
    )
    phantoms = forms.BooleanField(required=False, label="Include phantoms")

    def __init__(self, data=None, *, user, **kwargs):
        super().__init__(data, **kwargs)
        studies = permissions.visible_studies(user)
        self.fields["study"].queryset = studies.order_by("nickname")
        self.fields["site"].queryset = (
            Site.objects.filter(study_sites__study__in=studies).distinct().order_by("name")
        )
        for name in ("study", "site", "tag"):
            self.fields[name].error_messages["invalid_choice"] = (
                f"%(value)s is not a {name} you may search; choose one from the list."
            )
            self.fields[name].widget.attrs["class"] = "form-select form-select-sm"
        for name in ("comment", "reviewer", "reviewed_from", "reviewed_to"):
            self.fields[name].widget.attrs["class"] = "form-control form-control-sm"
        self.fields["phantoms"].widget.attrs["class"] = "form-check-input"

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("reviewed_from"), cleaned.get("reviewed_to")
        if start and end and start > end:
            self.add_error(
                "reviewed_to",
                f"The end date {end:%Y-%m-%d} is before the start date {start:%Y-%m-%d}; swap "
                f"them.",
            )
        return cleaned

    def filters(self):
        """Return the QCFilters of a valid form."""
        data = self.cleaned_data
        return QCFilters(
            mode=data.get("mode") or QCSearchMode.CURRENT,
            study=data.get("study"),
            site=data.get("site"),
            tag=data.get("tag"),
            states=tuple(data.get("state") or ()),
            comment=data.get("comment") or "",
            reviewer=data.get("reviewer") or "",
            reviewed_from=data.get("reviewed_from"),
            reviewed_to=data.get("reviewed_to"),
            include_phantoms=bool(data.get("phantoms")),
        )
