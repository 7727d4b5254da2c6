"""Forms of the reviewer pages: the scan review form and the session sign-off confirmation."""

from crispy_forms.bootstrap import StrictButton
from crispy_forms.helper import FormHelper
from crispy_forms.layout import Div, Field, Layout
from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import ProhibitNullCharactersValidator

from qc import services
from qc.models import QCState

STATE_CHOICES_TEXT = ", ".join(state.value for state in QCState)

# Label and Bootstrap button colour of each state's submit button, in display order.
REVIEW_BUTTONS = (
    (QCState.APPROVED, "Approve", "btn-success"),
    (QCState.FLAGGED, "Flag", "btn-warning"),
    (QCState.BLACKLISTED, "Blacklist", "btn-danger"),
    (QCState.NEW, "Back to new", "btn-outline-secondary"),
)


class CommentField(forms.CharField):
    """A review comment, checked by `qc.services.clean_comment` in the form's `clean_comment`.

    Django's own NUL-character check is left out, because it would reject the value first with
    a message that does not say what to do.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.validators = [
            validator
            for validator in self.validators
            if not isinstance(validator, ProhibitNullCharactersValidator)
        ]


class ReviewForm(forms.Form):
    """A QC decision on one scan. The state comes from the submit button the reviewer presses.

    `expected_review_id` is the newest review the page showed (empty when it showed none); a
    request without the field skips that check. `compact` lays the form out for a row of the
    timepoint page's scan table, which has no "save and next" box.
    """

    state = forms.ChoiceField(
        choices=QCState.choices,
        error_messages={
            "required": f"Choose a QC state ({STATE_CHOICES_TEXT}) with one of the buttons.",
            "invalid_choice": f"%(value)s is not a QC state; choose one of {STATE_CHOICES_TEXT}.",
        },
    )
    comment = CommentField(
        required=False,
        label="Comment",
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Required to flag or blacklist: say what is wrong.",
    )
    expected_review_id = forms.IntegerField(
        required=False,
        min_value=1,
        widget=forms.HiddenInput,
        error_messages={
            "invalid": "The form carries an invalid review id; reload the page and save again.",
            "min_value": "The form carries an invalid review id; reload the page and save again.",
        },
    )
    save_and_next = forms.BooleanField(
        required=False,
        initial=True,
        label="Save and next: open the next scan after saving",
    )

    def __init__(self, *args, compact=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.compact = compact
        # A conflict that stopped the last save (qc.services.ReviewConflict), shown above the
        # buttons; set by the view.
        self.conflict = None
        self.helper = FormHelper(self)
        # The page writes the <form> tag and its CSRF token, because the htmx attributes differ
        # between the timepoint page and the scan page.
        self.helper.form_tag = False
        self.helper.disable_csrf = True
        size = "btn-sm" if compact else ""
        buttons = [
            StrictButton(
                label, type="submit", name="state", value=state.value, css_class=f"{css} {size}"
            )
            for state, label, css in REVIEW_BUTTONS
        ]
        extra = []
        if compact:
            del self.fields["save_and_next"]
            self.fields["comment"].widget.attrs.update(
                {"rows": 1, "placeholder": "Comment (required to flag or blacklist)"}
            )
            self.fields["comment"].help_text = ""
            self.helper.form_show_labels = False
            comment = Field("comment", css_class="form-control-sm")
        else:
            comment = Field("comment")
            extra = [Field("save_and_next", wrapper_class="mt-2 mb-0")]
        self.helper.layout = Layout(
            Field("expected_review_id"),
            comment,
            Div(*buttons, css_class="d-flex flex-wrap gap-1 review-buttons"),
            *extra,
        )

    def clean_expected_review_id(self):
        # A missing field (an older page or a script) means "do not check"; an empty one means
        # the page showed no review.
        if self.add_prefix("expected_review_id") not in self.data:
            return services.ANY_REVIEW
        return self.cleaned_data["expected_review_id"]

    def clean_comment(self):
        try:
            return services.clean_comment(self.cleaned_data["comment"])
        except services.QCError as error:
            raise ValidationError(str(error)) from error

    def clean(self):
        cleaned_data = super().clean()
        # The state comes from a button and the review id from a hidden field, which have no
        # place on the page to show an error, so their errors are reported for the whole form.
        for name in ("state", "expected_review_id"):
            for message in self.errors.pop(name, []):
                self.add_error(None, message)
        return cleaned_data


class ScanIdsField(forms.Field):
    """A list of scan primary keys sent as repeated hidden inputs."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value):
        if not value:
            return []
        if not isinstance(value, list | tuple):
            value = [value]
        scan_ids = []
        for item in value:
            try:
                scan_ids.append(int(item))
            except (TypeError, ValueError) as error:
                raise ValidationError(
                    f"Invalid scan id {item!r} in the sign-off form; reload the confirmation "
                    f"page and confirm again."
                ) from error
        return scan_ids


class SignOffForm(forms.Form):
    """Confirmation of a session sign-off, carrying the new scans the reviewer was shown."""

    approve_scan_ids = ScanIdsField(required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.helper = FormHelper(self)
        self.helper.form_tag = False
        self.helper.disable_csrf = True
        self.helper.layout = Layout(
            Field("approve_scan_ids"),
            # Focused on load, so Enter confirms after the "s" shortcut opened this page.
            StrictButton(
                "Sign off session", type="submit", css_class="btn-primary", autofocus="autofocus"
            ),
        )
