"""Form of the study README editor."""

from crispy_forms.bootstrap import StrictButton
from crispy_forms.helper import FormHelper
from crispy_forms.layout import Div, Field, Layout
from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import ProhibitNullCharactersValidator

from studies import services as study_services
from studies.readme import README_MAX_CHARS

PREVIEW = "preview"
SAVE = "save"


class StudyReadmeForm(forms.Form):
    """The Markdown text of a study's README and the version the editor started from."""

    text = forms.CharField(
        required=False,
        label="README",
        strip=False,
        widget=forms.Textarea(attrs={"rows": 18, "class": "font-monospace"}),
        help_text=(
            f"Markdown: headings (#), lists, links, tables and code blocks. HTML tags other than "
            f"simple formatting are removed. At most {README_MAX_CHARS:,} characters."
        ),
    )
    based_on = forms.IntegerField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The service's NUL check gives a message with the fix, and Django's validator would not.
        self.fields["text"].validators = [
            validator
            for validator in self.fields["text"].validators
            if not isinstance(validator, ProhibitNullCharactersValidator)
        ]
        self.helper = FormHelper(self)
        self.helper.form_tag = False
        self.helper.disable_csrf = True
        self.helper.layout = Layout(
            Field("text"),
            Field("based_on"),
            Div(
                StrictButton(
                    "Preview",
                    type="submit",
                    name="action",
                    value=PREVIEW,
                    css_class="btn-outline-secondary",
                ),
                StrictButton(
                    "Save", type="submit", name="action", value=SAVE, css_class="btn-primary"
                ),
                css_class="d-flex gap-2",
            ),
        )

    def clean_text(self):
        try:
            return study_services.clean_readme_text(self.cleaned_data["text"])
        except study_services.StudyReadmeError as error:
            raise ValidationError(str(error)) from error
