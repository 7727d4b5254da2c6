"""The form that requests the reason for a deletion or a restore."""

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import ProhibitNullCharactersValidator

from studies import services


class ReasonForm(forms.Form):
    """The reason a dashboard admin gives for deleting or restoring a record."""

    reason = forms.CharField(
        max_length=services.MAX_REASON_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=(
            f"Required, at most {services.MAX_REASON_LENGTH} characters. Kept in the deletion "
            f"log with your name and the time."
        ),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # services.clean_reason rejects NUL characters with a message that names the fix.
        field = self.fields["reason"]
        field.validators = [
            validator
            for validator in field.validators
            if not isinstance(validator, ProhibitNullCharactersValidator)
        ]

    def clean_reason(self):
        try:
            return services.clean_reason(self.cleaned_data["reason"])
        except services.DeletionError as error:
            raise ValidationError(str(error)) from error
