"""The survey partial of the session pages, its selector and the dismiss action."""

from datetime import UTC, datetime

import pytest
from django.template.loader import render_to_string
from django.test import RequestFactory
from django.urls import reverse

from redcap.models import LinkKind, SurveyDismissal
from redcap.selectors import surveys_for_sessions
from tests.redcap.factories import (
    RedcapRecordFactory,
    SessionSurveyFactory,
    SurveyDismissalFactory,
)
from tests.studies.factories import (
    PhantomTimepointFactory,
    SessionFactory,
    StudySiteFactory,
    TimepointFactory,
)

pytestmark = pytest.mark.django_db

DISMISS_URL = reverse("redcap:dismiss_survey", args=["SPN01_CMH_0001_01_01"])


def render_panel(session, user, **context):
    panel = surveys_for_sessions([session])[session.pk]
    request = RequestFactory().get("/timepoints/SPN01_CMH_0001_01/")
    request.user = user
    return render_to_string(
        "redcap/_session_survey.html", {"survey": panel, **context}, request=request
    )


# Selector


def test_panel_states(session, ra, study_site):
    phantom = SessionFactory(timepoint=PhantomTimepointFactory(study_site=study_site))
    no_redcap_site = StudySiteFactory(code="NOR01", uses_redcap=False)
    no_redcap = SessionFactory(timepoint=TimepointFactory(study_site=no_redcap_site))
    with_survey = SessionFactory(timepoint=TimepointFactory(study_site=study_site))
    SessionSurveyFactory(session=with_survey)
    dismissed = SessionFactory(timepoint=TimepointFactory(study_site=study_site))
    SurveyDismissalFactory(session=dismissed, dismissed_by=ra)

    panels = surveys_for_sessions([session, phantom, no_redcap, with_survey, dismissed])

    assert panels[session.pk].state == "missing"
    assert panels[phantom.pk].state == "none"
    assert panels[no_redcap.pk].state == "none"
    assert panels[with_survey.pk].state == "survey"
    assert panels[dismissed.pk].state == "dismissed"
    assert panels[session.pk].session_name == "SPN01_CMH_0001_01_01"
    assert session.redcap_panel is panels[session.pk]


@pytest.mark.parametrize("count", [1, 20])
def test_panel_query_count(study_site, ra, django_assert_num_queries, count):
    sessions = []
    for index in range(count):
        session = SessionFactory(timepoint=TimepointFactory(study_site=study_site))
        if index % 3 == 0:
            SessionSurveyFactory(session=session)
        elif index % 3 == 1:
            SurveyDismissalFactory(session=session, dismissed_by=ra)
        sessions.append(session)
    sessions = [type(session).objects.get(pk=session.pk) for session in sessions]

    # 1 sessions with timepoint and study site, 2 links with record and configuration,
    # 3 dismissals with who dismissed them.
    with django_assert_num_queries(3):
        panels = surveys_for_sessions(sessions)
        for panel in panels.values():
            str(panel.record_url)
            str(panel.dismissal.dismissed_by if panel.dismissal else "")

    assert len(panels) == count


def test_panel_loaded_sessions_query_count(study_site, ra, django_assert_num_queries):
    with_survey = SessionFactory(timepoint=TimepointFactory(study_site=study_site))
    SessionSurveyFactory(session=with_survey)
    dismissed = SessionFactory(timepoint=TimepointFactory(study_site=study_site))
    SurveyDismissalFactory(session=dismissed, dismissed_by=ra)
    missing = SessionFactory(timepoint=TimepointFactory(study_site=study_site))
    pks = [with_survey.pk, dismissed.pk, missing.pk]
    Session = type(missing)
    fetched = list(Session.objects.filter(pk__in=pks).order_by("pk"))
    loaded = list(
        Session.objects.filter(pk__in=pks).select_related("timepoint__study_site").order_by("pk")
    )

    expected = surveys_for_sessions(fetched)
    # Sessions that come with their timepoints and study sites need no query of their own:
    # 1 links with record and configuration, 2 dismissals with who dismissed them.
    with django_assert_num_queries(2):
        panels = surveys_for_sessions(loaded)

    assert panels == expected
    assert [panels[pk].state for pk in pks] == ["survey", "dismissed", "missing"]


# Partial


def test_partial_shows_survey(session, ra):
    record = RedcapRecordFactory(record_id="12", entered_by="Jane Doe", comment="All fine.")
    record.config.url = "https://redcap.example.org/"
    record.config.project_id = 1234
    record.config.save()
    SessionSurveyFactory(session=session, record=record)

    html = render_panel(session, ra)

    assert "All fine." in html
    assert "by Jane Doe" in html
    assert (
        "https://redcap.example.org/redcap_v14.5.2/DataEntry/record_home.php?pid=1234&amp;id=12"
        in html
    )
    assert 'data-survey-state="survey"' in html


def test_partial_long_comment_folded(session, ra):
    comment = "word " * 1000 + "LAST"
    SessionSurveyFactory(session=session, record=RedcapRecordFactory(comment=comment))

    html = render_panel(session, ra)

    assert "<details" in html
    assert "LAST" in html


def test_partial_record_without_version(session, ra):
    record = RedcapRecordFactory(record_id="12")
    record.config.redcap_version = ""
    record.config.save()
    SessionSurveyFactory(session=session, record=record)

    html = render_panel(session, ra)

    assert "record_home.php" not in html
    assert "record 12" in html


def test_partial_shared_badge(session, ra):
    SessionSurveyFactory(session=session, kind=LinkKind.SHARED)

    assert ">shared<" in render_panel(session, ra)


def test_partial_missing_survey_form(session, ra):
    html = render_panel(session, ra)

    assert "Missing survey:" in html
    assert f'action="{DISMISS_URL}"' in html
    assert 'name="reason"' in html
    assert 'name="next" value="/timepoints/SPN01_CMH_0001_01/"' in html


def test_partial_dismissed(session, ra):
    SurveyDismissalFactory(session=session, dismissed_by=ra, reason="Scan aborted.")

    html = render_panel(session, ra)

    assert "Scan aborted." in html
    assert "dismissed by ra" in html
    assert "Missing survey" not in html


def test_partial_phantom_empty(study_site, ra):
    phantom = SessionFactory(timepoint=PhantomTimepointFactory(study_site=study_site))

    html = render_panel(phantom, ra)

    assert "Missing survey" not in html
    assert 'data-survey-state="none"' in html


# Dismiss action


def test_dismiss_records_who_and_why(ra_client, ra, session):
    response = ra_client.post(
        DISMISS_URL, {"reason": "Scan aborted.", "next": "/timepoints/SPN01_CMH_0001_01/"}
    )

    assert response.status_code == 302
    assert response.url == "/timepoints/SPN01_CMH_0001_01/"
    dismissal = SurveyDismissal.objects.get()
    assert dismissal.session == session
    assert dismissal.reason == "Scan aborted."
    assert dismissal.dismissed_by == ra
    assert dismissal.created_at is not None


def test_dismiss_requires_reason(ra_client, session):
    response = ra_client.post(DISMISS_URL, {"reason": "   "}, follow=True)

    assert "A reason is required" in response.text
    assert SurveyDismissal.objects.count() == 0


def test_dismiss_twice(ra_client, ra, session):
    SurveyDismissalFactory(session=session, dismissed_by=ra)

    response = ra_client.post(DISMISS_URL, {"reason": "Again."}, follow=True)

    assert "already dismissed by ra" in response.text
    assert SurveyDismissal.objects.count() == 1


def test_dismiss_phantom_rejected(ra_client, study_site):
    phantom = SessionFactory(timepoint=PhantomTimepointFactory(study_site=study_site))
    url = reverse("redcap:dismiss_survey", args=[phantom.name])

    response = ra_client.post(url, {"reason": "No survey."}, follow=True)

    assert "phantoms never expect a survey" in response.text
    assert SurveyDismissal.objects.count() == 0


def test_dismiss_with_survey_rejected(ra_client, session):
    SessionSurveyFactory(session=session)

    response = ra_client.post(DISMISS_URL, {"reason": "No survey."}, follow=True)

    assert "there is nothing to dismiss" in response.text


def test_dismiss_unknown_session(ra_client, session):
    url = reverse("redcap:dismiss_survey", args=["SPN01_CMH_0404_01_01"])

    assert ra_client.post(url, {"reason": "x"}).status_code == 404


def test_dismiss_invalid_session_id(ra_client):
    url = reverse("redcap:dismiss_survey", args=["not-an-id"])

    assert ra_client.post(url, {"reason": "x"}).status_code == 404


def test_dismiss_unsafe_next_ignored(ra_client, session):
    response = ra_client.post(
        DISMISS_URL, {"reason": "Scan aborted.", "next": "https://evil.example.org/"}
    )

    assert response.url == reverse("qc:study_list")


def test_dismiss_htmx_returns_partial(ra_client, session):
    response = ra_client.post(
        DISMISS_URL, {"reason": "Scan aborted."}, headers={"HX-Request": "true"}
    )

    assert response.status_code == 200
    assert 'data-survey-state="dismissed"' in response.text
    assert "Scan aborted." in response.text


def test_dismiss_htmx_error_in_partial(ra_client, session):
    response = ra_client.post(
        DISMISS_URL,
        {"reason": "", "next": "/timepoints/SPN01_CMH_0001_01/"},
        headers={"HX-Request": "true"},
    )

    assert 'data-survey-state="missing"' in response.text
    assert "A reason is required" in response.text
    assert 'name="next" value="/timepoints/SPN01_CMH_0001_01/"' in response.text


def test_dismiss_twice_message_shows_zone(ra_client, ra, session, settings):
    settings.TIME_ZONE = "America/Toronto"
    SurveyDismissalFactory(session=session, dismissed_by=ra)
    SurveyDismissal.objects.update(created_at=datetime(2026, 1, 15, 17, 30, tzinfo=UTC))

    response = ra_client.post(DISMISS_URL, {"reason": "Again."}, follow=True)

    assert "already dismissed by ra on 2026-01-15 12:30 EST." in response.text
