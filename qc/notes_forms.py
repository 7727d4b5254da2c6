"""Forms of timepoint comments and incidental findings. The text checks are the services', so
the form and a direct service call reject the same input with the same message."""

from crispy_forms.bootstrap import StrictButton
from crispy_forms.helper import FormHelper
from crispy_forms.layout import Div, Field, Layout
from django import forms
from django.core.exceptions import ValidationError

from qc import notes_services
from qc.forms import CommentField


def _checked(text, **kwargs):
    try:
        return notes_services.clean_text(text, **kwargs)
    except notes_services.NoteError as error:
        raise ValidationError(str(error)) from error


def _helper(form, *fields, button, button_class="btn-primary btn-sm"):
    # The page writes the <form> tag and its CSRF token, as for the review forms.
    helper = FormHelper(form)
    helper.form_tag = False
    helper.disable_csrf = True
    helper.layout = Layout(
        *fields,
        Div(StrictButton(button, type="submit", css_class=button_class), css_class="d-flex gap-2"),
    )
    return helper


class CommentForm(forms.Form):
    """A new timepoint comment, or the new text of one (`editing`)."""

    text = CommentField(
        label="Comment",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=f"Plain text, at most {notes_services.MAX_COMMENT_LENGTH} characters.",
    )

    def __init__(self, *args, editing=False, **kwargs):
        super().__init__(*args, **kwargs)
        if editing:
            self.fields["text"].label = "New text"
        self.helper = _helper(
            self, Field("text"), button="Save changes" if editing else "Add comment"
        )

    def clean_text(self):
        return _checked(
            self.cleaned_data["text"],
            label="comment",
            max_length=notes_services.MAX_COMMENT_LENGTH,
        )


class FindingForm(forms.Form):
    """An incidental finding: what was seen, and where."""

    description = CommentField(
        label="Description",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=(
            "What you saw and in which scan. Only study admins, the study's contacts and you "
            "will see it; the contacts are emailed."
        ),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.helper = _helper(
            self, Field("description"), button="Report finding", button_class="btn-danger btn-sm"
        )

    def clean_description(self):
        return _checked(
            self.cleaned_data["description"],
            label="description",
            max_length=notes_services.MAX_FINDING_LENGTH,
        )


class FindingNoteForm(forms.Form):
    """A follow-up on an incidental finding: a note, the mark that it was resolved, or both."""

    text = CommentField(
        label="Note",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Required unless you mark the finding resolved.",
    )
    marks_resolved = forms.BooleanField(label="Mark resolved", required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.helper = _helper(
            self,
            Field("text"),
            Field("marks_resolved"),
            button="Add note",
            button_class="btn-outline-primary btn-sm",
        )

    def clean(self):
        cleaned_data = super().clean()
        if "text" in cleaned_data:
            try:
                cleaned_data["text"] = notes_services.clean_text(
                    cleaned_data["text"],
                    label="note",
                    max_length=notes_services.MAX_FINDING_LENGTH,
                    required=not cleaned_data.get("marks_resolved"),
                )
            except notes_services.NoteError as error:
                self.add_error("text", str(error))
        return cleaned_data
