"""The admin of REDCap configurations: the token stays hidden, the trigger URL is shown."""

import pytest
from django.urls import reverse

from redcap.models import RedcapConfig
from tests.redcap.factories import TOKEN, RedcapConfigFactory
from tests.studies.factories import StudySiteFactory, UserFactory

pytestmark = pytest.mark.django_db

NEW_TOKEN = "FEDCBA9876543210FEDCBA9876543210"


@pytest.fixture
def admin_client(client):
    user = UserFactory(username="admin", is_staff=True, is_superuser=True, is_dashboard_admin=True)
    client.force_login(user)
    return client


def change_url(config):
    return reverse("admin:redcap_redcapconfig_change", args=[config.pk])


def form_data(config, **overrides):
    data = {
        "url": config.url,
        "api_url": config.api_url,
        "project_id": str(config.project_id),
        "instrument": config.instrument,
        "record_key_field": config.record_key_field,
        "session_field": config.session_field,
        "date_field": config.date_field,
        "comment_field": config.comment_field,
        "status_field": config.status_field,
        "complete_values": '["2"]',
        "user_field": config.user_field,
        "event_ids": "{}",
        "new_token": "",
    }
    data.update(overrides)
    return data


def test_change_page_hides_token(admin_client):
    config = RedcapConfigFactory()

    response = admin_client.get(change_url(config))

    assert response.status_code == 200
    assert TOKEN not in response.text
    assert TOKEN[:8] not in response.text
    assert "…CDEF" in response.text


def test_change_page_shows_trigger_url(admin_client):
    config = RedcapConfigFactory()

    response = admin_client.get(change_url(config))

    expected = f"http://testserver/redcap/trigger/{config.trigger_secret}/"
    assert f'value="{expected}"' in response.text


def test_list_page_hides_token(admin_client):
    RedcapConfigFactory()

    response = admin_client.get(reverse("admin:redcap_redcapconfig_changelist"))

    assert TOKEN not in response.text
    assert "…CDEF" in response.text


def test_replace_token(admin_client):
    config = RedcapConfigFactory()

    response = admin_client.post(change_url(config), form_data(config, new_token=NEW_TOKEN))

    assert response.status_code == 302
    config.refresh_from_db()
    assert config.token == NEW_TOKEN
    page = admin_client.get(change_url(config))
    assert NEW_TOKEN not in page.text
    assert "…3210" in page.text


def test_empty_token_field_keeps_token(admin_client):
    config = RedcapConfigFactory()

    response = admin_client.post(change_url(config), form_data(config, instrument="scan_log"))

    assert response.status_code == 302
    config.refresh_from_db()
    assert config.token == TOKEN
    assert config.instrument == "scan_log"


def test_invalid_token_rejected(admin_client):
    config = RedcapConfigFactory()

    response = admin_client.post(change_url(config), form_data(config, new_token="abc"))

    assert response.status_code == 200
    assert "This is not a REDCap API token" in response.text
    assert 'value="abc"' not in response.text
    config.refresh_from_db()
    assert config.token == TOKEN


def test_add_requires_token(admin_client):
    site = StudySiteFactory()
    data = form_data(
        RedcapConfig(url="https://redcap.example.org", project_id=7), study_sites=[site.pk]
    )

    response = admin_client.post(reverse("admin:redcap_redcapconfig_add"), data)

    assert "Enter the project&#x27;s REDCap API token." in response.text
    assert RedcapConfig.objects.count() == 0


def test_add_config(admin_client):
    site = StudySiteFactory()
    data = form_data(
        RedcapConfig(url="https://redcap.example.org", project_id=7, instrument="scan_log"),
        new_token=NEW_TOKEN,
        study_sites=[site.pk],
        event_ids='{"baseline_arm_1": "41"}',
    )

    response = admin_client.post(reverse("admin:redcap_redcapconfig_add"), data)

    assert response.status_code == 302
    config = RedcapConfig.objects.get()
    assert config.url == "https://redcap.example.org/"
    assert config.token == NEW_TOKEN
    assert config.event_ids == {"baseline_arm_1": 41}
    assert list(config.study_sites.all()) == [site]
    assert len(config.trigger_secret) >= 43


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("event_ids", '{"Baseline Arm": 41}', "is not a unique event name"),
        ("event_ids", '{"baseline_arm_1": "first"}', "enter a whole number"),
        ("event_ids", "[41]", "Enter a mapping of unique event names"),
        ("complete_values", "[]", "Enter a list of values"),
    ],
)
def test_invalid_mapping_rejected(admin_client, field, value, message):
    config = RedcapConfigFactory()

    response = admin_client.post(change_url(config), form_data(config, **{field: value}))

    assert response.status_code == 200
    assert message in response.text


def test_regenerate_trigger_url(admin_client):
    config = RedcapConfigFactory()
    old_secret = config.trigger_secret

    response = admin_client.post(change_url(config), form_data(config, regenerate_trigger_url="on"))

    assert response.status_code == 302
    config.refresh_from_db()
    assert config.trigger_secret != old_secret
    assert admin_client.post(reverse("redcap:trigger", args=[old_secret])).status_code == 404


def test_regenerate_action(admin_client):
    configs = RedcapConfigFactory.create_batch(2)
    old = {config.pk: config.trigger_secret for config in configs}

    response = admin_client.post(
        reverse("admin:redcap_redcapconfig_changelist"),
        {"action": "regenerate_trigger_urls", "_selected_action": list(old)},
    )

    assert response.status_code == 302
    for config in RedcapConfig.objects.all():
        assert config.trigger_secret != old[config.pk]


def test_repr_hides_token():
    config = RedcapConfigFactory.build(token=TOKEN)

    assert TOKEN not in repr(config)
    assert TOKEN not in str(config)
