"""Forms of the compliance actions: resolving a header deviation, dismissing missing scans.

The partials write these forms by hand, because each sits in a row or a badge, so the forms
here only validate what is posted.
"""

from django import forms
from django.core.exceptions import ValidationError

from qc import services
from qc.forms import CommentField
from qc.models import DeviationDecision, SidecarRepairAction

DECISIONS_TEXT = ", ".join(DeviationDecision.values)


def _clean_text(value):
    try:
        return services.clean_comment(value)
    except services.QCError as error:
        raise ValidationError(str(error)) from error


class DeviationResolutionForm(forms.Form):
    """A decision on one deviation of the header diff the reviewer was shown."""

    header_diff = forms.IntegerField(
        widget=forms.HiddenInput,
        error_messages={"required": "The form lacks the header diff; reload the page."},
    )
    field = forms.CharField(
        max_length=255,
        widget=forms.HiddenInput,
        error_messages={"required": "The form lacks the field name; reload the page."},
    )
    decision = forms.ChoiceField(
        choices=DeviationDecision.choices,
        error_messages={
            "required": f"Choose a decision ({DECISIONS_TEXT}) with one of the buttons.",
            "invalid_choice": f"%(value)s is not a decision; choose one of {DECISIONS_TEXT}.",
        },
    )
    reason = CommentField(required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def clean_reason(self):
        return _clean_text(self.cleaned_data["reason"])


class MissingScansDismissalForm(forms.Form):
    """The reason a session's missing scans need no action."""

    reason = CommentField(
        error_messages={"required": "Give a reason: say why the scans are missing."},
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def clean_reason(self):
        return _clean_text(self.cleaned_data["reason"])


class SidecarRepairForm(forms.Form):
    """A SliceTiming repair: which action, and the values for an edit."""

    action = forms.ChoiceField(
        choices=SidecarRepairAction.choices,
        error_messages={
            "required": "Choose a repair: standard, edited or removed.",
            "invalid_choice": "%(value)s is not a repair; choose standard, edited or removed.",
        },
    )
    values = forms.CharField(required=False, max_length=20000, strip=True)
