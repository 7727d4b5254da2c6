"""Forms of the account pages and the account-request fields of allauth's sign-up forms."""

from django import forms
from django.urls import reverse

from accounts import services
from accounts.models import Role, User
from accounts.services import Grant
from studies.models import Site, Study, StudySite


class AccountRequestSignupForm(forms.Form):
    """The account-request fields that allauth adds to its local and OAuth sign-up forms
    (ACCOUNT_SIGNUP_FORM_CLASS). A new account stays inactive until a dashboard admin approves
    the request."""

    first_name = forms.CharField(max_length=150)
    last_name = forms.CharField(max_length=150)
    institution = forms.CharField(max_length=255)
    position = forms.CharField(
        max_length=255, help_text="For example research assistant, graduate student, PI."
    )
    studies_and_sites = forms.CharField(
        label="Studies and sites",
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Which studies you need, and which sites if not all, e.g. SPINS at CMH.",
    )
    reason = forms.CharField(
        label="Why you need access",
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def signup(self, request, user):
        """Save the names and record the account request (called by allauth after sign-up)."""
        user.first_name = self.cleaned_data["first_name"]
        user.last_name = self.cleaned_data["last_name"]
        user.save(update_fields=["first_name", "last_name"])
        services.submit_account_request(
            user,
            institution=self.cleaned_data["institution"],
            position=self.cleaned_data["position"],
            studies_and_sites=self.cleaned_data["studies_and_sites"],
            reason=self.cleaned_data["reason"],
            queue_url=request.build_absolute_uri(reverse("accounts:request_list")),
        )


class ProfileForm(forms.ModelForm):
    class Meta:
        model = User
        fields = ["first_name", "last_name", "phone", "institution", "position"]


class GrantForm(forms.Form):
    """A role to grant in a study, at one of its sites or at all of them."""

    study = forms.ModelChoiceField(queryset=Study.objects.order_by("nickname"))
    site = forms.ModelChoiceField(
        queryset=Site.objects.order_by("name"),
        required=False,
        empty_label="All sites",
        help_text="Leave at all sites unless the person may see only one site's data.",
    )
    role = forms.TypedChoiceField(choices=Role.choices, coerce=lambda value: Role(int(value)))
    is_primary_contact = forms.BooleanField(label="Primary contact (PI)", required=False)
    is_staff_contact = forms.BooleanField(label="Staff contact", required=False)

    def __init__(self, *args, study=None, roles=None, **kwargs):
        super().__init__(*args, **kwargs)
        if study is not None:
            # The study is fixed by the page (a study's members page).
            self.fields["study"].queryset = Study.objects.filter(pk=study.pk)
            self.fields["study"].initial = study.pk
            self.fields["study"].widget = forms.HiddenInput()
            self.fields["site"].queryset = Site.objects.filter(study_sites__study=study).order_by(
                "name"
            )
        if roles is not None:
            self.fields["role"].choices = [(role.value, role.label) for role in roles]

    def clean(self):
        cleaned = super().clean()
        study, site = cleaned.get("study"), cleaned.get("site")
        if study and site and not StudySite.objects.filter(study=study, site=site).exists():
            self.add_error("site", f"{site} is not a site of {study}; choose one of its sites.")
        return cleaned


class MemberGrantForm(GrantForm):
    """A role in the page's study for the person with this email address."""

    email = forms.EmailField(help_text="The email address the person signs in with.")
    field_order = ["email", "site", "role", "is_primary_contact", "is_staff_contact"]

    def clean_email(self):
        email = self.cleaned_data["email"]
        user = User.objects.filter(email__iexact=email).first()
        if user is None:
            raise forms.ValidationError(
                f"No account uses {email}; the person must request an account first."
            )
        return user


def scope_choices():
    """Choices of study and site for approving a request: "<study id>" means every site of the
    study, "<study id>:<site id>" one site."""
    choices = []
    study_sites = StudySite.objects.select_related("study", "site").order_by(
        "study__nickname", "site__name"
    )
    seen = set()
    for study_site in study_sites:
        study = study_site.study
        if study.pk not in seen:
            seen.add(study.pk)
            choices.append((str(study.pk), f"{study.nickname}, all sites"))
        choices.append(
            (f"{study.pk}:{study_site.site_id}", f"{study.nickname} at {study_site.site}")
        )
    for study in Study.objects.exclude(pk__in=seen).order_by("nickname"):
        choices.append((str(study.pk), f"{study.nickname}, all sites"))
    return choices


class ApproveForm(forms.Form):
    """Approve an account request with one role in each chosen study or study site."""

    scopes = forms.MultipleChoiceField(
        label="Studies and sites", widget=forms.CheckboxSelectMultiple
    )
    role = forms.TypedChoiceField(
        choices=Role.choices, coerce=lambda value: Role(int(value)), initial=Role.VIEWER
    )
    is_primary_contact = forms.BooleanField(label="Primary contact (PI)", required=False)
    is_staff_contact = forms.BooleanField(label="Staff contact", required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["scopes"].choices = scope_choices()

    def grants(self):
        """Return the Grants the form describes (call after is_valid)."""
        studies = {study.pk: study for study in Study.objects.all()}
        sites = {site.pk: site for site in Site.objects.all()}
        grants = []
        for value in self.cleaned_data["scopes"]:
            study_id, _, site_id = value.partition(":")
            grants.append(
                Grant(
                    study=studies[int(study_id)],
                    site=sites[int(site_id)] if site_id else None,
                    role=self.cleaned_data["role"],
                    is_primary_contact=self.cleaned_data["is_primary_contact"],
                    is_staff_contact=self.cleaned_data["is_staff_contact"],
                )
            )
        return grants


class RejectForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="The requester receives this reason by email.",
    )


class DeactivateForm(forms.Form):
    reason = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Kept in the account's history.",
    )
