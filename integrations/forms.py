from django import forms

from integrations.services import MAX_BODY_LENGTH
from integrations.tracker import MAX_TITLE_LENGTH


class NewIssueForm(forms.Form):
    title = forms.CharField(
        max_length=MAX_TITLE_LENGTH,
        help_text="The timepoint ID is added in front when the title does not contain it.",
    )
    body = forms.CharField(
        label="Description",
        required=False,
        max_length=MAX_BODY_LENGTH,
        widget=forms.Textarea(attrs={"rows": 8}),
        help_text="What is wrong with the data, in Markdown. No participant names or other PHI.",
    )
