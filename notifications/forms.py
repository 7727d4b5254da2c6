from django import forms

from notifications.models import DigestFrequency, NotificationKind
from notifications.services import REQUIRED_KINDS

OPTIONAL_KINDS = [
    (kind.value, kind.label)
    for kind in NotificationKind
    if kind not in REQUIRED_KINDS and kind != NotificationKind.DIGEST
]


class PreferenceForm(forms.Form):
    kinds = forms.MultipleChoiceField(
        choices=OPTIONAL_KINDS,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Email me about",
        help_text="Account and incidental-finding notices are always sent.",
    )
    digest = forms.ChoiceField(
        choices=DigestFrequency.choices,
        required=False,
        label="Digest of sessions waiting for QC",
    )

    def clean_digest(self):
        return self.cleaned_data["digest"] or DigestFrequency.NONE
