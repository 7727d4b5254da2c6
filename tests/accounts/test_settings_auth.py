"""OAuth provider, email verification and MFA settings read from the environment."""

import json

import pytest

from tests.test_settings import PRODUCTION_ENV, run_manage

PRINT_PROVIDERS = (
    "from django.conf import settings; import json; "
    "print(json.dumps({name: bool(conf.get('APPS')) for name, conf in "
    "settings.SOCIALACCOUNT_PROVIDERS.items()}))"
)


# Every provider variable blank, so a developer's own environment does not change the result.
BLANK_PROVIDERS = {
    f"{prefix}_{suffix}": ""
    for prefix in ("GITHUB", "GITLAB", "GOOGLE", "ORCID", "OIDC")
    for suffix in ("CLIENT_ID", "CLIENT_SECRET")
}


def configured_providers(env):
    result = run_manage("shell", "-c", PRINT_PROVIDERS, env={**BLANK_PROVIDERS, **env})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_no_provider_without_env():
    providers = configured_providers({})

    assert not any(providers.values())


def test_provider_on_with_id_and_secret():
    providers = configured_providers({"GITHUB_CLIENT_ID": "abc", "GITHUB_CLIENT_SECRET": "def"})

    assert providers["github"] is True
    assert providers["google"] is False


def test_half_configured_provider_stops_start_up():
    result = run_manage("check", env={**BLANK_PROVIDERS, "GOOGLE_CLIENT_ID": "abc"})

    assert result.returncode != 0
    assert "GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET must be set together" in result.stderr


def test_oidc_needs_server_url():
    result = run_manage(
        "check", env={**BLANK_PROVIDERS, "OIDC_CLIENT_ID": "abc", "OIDC_CLIENT_SECRET": "def"}
    )

    assert result.returncode != 0
    assert "OIDC_SERVER_URL is not set" in result.stderr


def test_invalid_email_verification_stops_start_up():
    result = run_manage("check", env={"ACCOUNT_EMAIL_VERIFICATION": "sometimes"})

    assert result.returncode != 0
    assert "ACCOUNT_EMAIL_VERIFICATION is 'sometimes'" in result.stderr


PRINT_MFA = "from django.conf import settings; print(settings.MFA_REQUIRED_FOR_DASHBOARD_ADMINS)"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"DEBUG": "true", "MFA_REQUIRED_FOR_DASHBOARD_ADMINS": ""}, "False"),
        ({**PRODUCTION_ENV, "MFA_REQUIRED_FOR_DASHBOARD_ADMINS": ""}, "True"),
        ({"DEBUG": "true", "MFA_REQUIRED_FOR_DASHBOARD_ADMINS": "true"}, "True"),
        ({**PRODUCTION_ENV, "MFA_REQUIRED_FOR_DASHBOARD_ADMINS": "false"}, "False"),
    ],
)
def test_mfa_requirement_default(env, expected):
    result = run_manage("shell", "-c", PRINT_MFA, env=env)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == expected
