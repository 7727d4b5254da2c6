"""Read queries for the REDCap pieces of the reviewer pages and for the REDCap list pages."""

from dataclasses import dataclass

from redcap.models import RedcapRecord, SessionSurvey, SurveyDismissal
from studies.models import Session, Timepoint


@dataclass(frozen=True)
class SurveyPanel:
    """The survey information that `redcap/_session_survey.html` shows for one session.

    `state` is one of: "survey" (a record is linked), "dismissed" (no survey expected any more),
    "missing" (a survey is expected and none is linked) or "none" (no survey expected).
    """

    session_id: int
    session_name: str
    state: str
    record: RedcapRecord | None = None
    link: SessionSurvey | None = None
    dismissal: SurveyDismissal | None = None

    @property
    def record_url(self):
        return self.record.url if self.record is not None else ""


def surveys_for_sessions(sessions):
    """Return {session pk: SurveyPanel} for sessions, in three queries whatever their number.

    The queries: the sessions' names and whether they expect a survey (skipped when every
    session comes with its timepoint and the timepoint's study site loaded), their survey links
    with the records and configurations, and their dismissals with who dismissed them. Each
    Session object passed in also gets the panel as its `redcap_panel` attribute, for templates.
    """
    sessions = list(sessions)
    ids = [session.pk for session in sessions]
    if all(_study_site_loaded(session) for session in sessions):
        rows = sessions
    else:
        rows = Session.objects.filter(pk__in=ids).select_related("timepoint__study_site")
    links = {
        link.session_id: link
        for link in SessionSurvey.objects.filter(session_id__in=ids).select_related(
            "record__config"
        )
    }
    dismissals = {
        dismissal.session_id: dismissal
        for dismissal in SurveyDismissal.objects.filter(session_id__in=ids).select_related(
            "dismissed_by"
        )
    }

    panels = {}
    for row in rows:
        session_id = row.pk
        is_phantom = row.timepoint.is_phantom
        link = links.get(session_id)
        dismissal = dismissals.get(session_id)
        if link is not None:
            state = "survey"
        elif dismissal is not None:
            state = "dismissed"
        elif row.timepoint.study_site.uses_redcap and not is_phantom:
            state = "missing"
        else:
            state = "none"
        panels[session_id] = SurveyPanel(
            session_id=session_id,
            session_name=row.name,
            state=state,
            record=link.record if link is not None else None,
            link=link,
            dismissal=dismissal,
        )
    for session in sessions:
        session.redcap_panel = panels.get(session.pk)
    return panels


def _study_site_loaded(session):
    return Session.timepoint.is_cached(session) and Timepoint.study_site.is_cached(
        session.timepoint
    )


def unmatched_records():
    """Records linked to no session, newest first, with their configuration."""
    return RedcapRecord.objects.for_unmatched_page()
