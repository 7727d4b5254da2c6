"""Timepoint page: each session's tech notes and task files, linked through the file view."""

import re
from datetime import UTC, datetime

import pytest
from django.urls import reverse

from accounts.models import Role, StudyMembership
from studies.models import StudySite, TaskFile
from tests.qc.scenarios import make_study_site
from tests.studies.factories import (
    PhantomTimepointFactory,
    SessionFactory,
    SiteFactory,
    StudySiteFactory,
    TimepointFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

MODIFIED = datetime(2026, 3, 4, 10, 30, tzinfo=UTC)


def timepoint_url(name):
    return reverse("qc:timepoint_detail", args=[name])


def file_url(study, path):
    return reverse("studies:archive_file", kwargs={"study": study, "relative_path": path})


def files_block(html, session):
    """The HTML of a session card from its files block to the scan table."""
    pattern = (
        rf'data-session-files="{session.name}">.*?'
        r'(?=<div class="table-responsive|<div class="card-body|</section>)'
    )
    match = re.search(pattern, html, re.S)
    assert match, f"no files block for session {session.name}"
    return match.group(0)


def add_files(session, task_count=2):
    session.tech_notes_path = f"data/RESOURCES/{session.name}/notes/Tech_Notes.pdf"
    session.tech_notes_size = 2048
    session.tech_notes_modified_at = MODIFIED
    session.save()
    for index in range(task_count):
        TaskFile.objects.create(
            session=session,
            path=f"task/{session.name}/run{index + 1}.edat2",
            name=f"run{index + 1}.edat2",
            size=1536,
            modified_at=MODIFIED,
        )


@pytest.fixture
def session():
    study_site = make_study_site()
    StudySite.objects.filter(pk=study_site.pk).update(uses_tech_notes=True)
    return SessionFactory(timepoint=TimepointFactory(study_site=study_site))


def test_session_files_listed(reviewer_client, session):
    add_files(session)

    response = reviewer_client.get(timepoint_url(session.timepoint.name))

    block = files_block(response.text, session)
    notes = file_url("SPINS", session.tech_notes_path)
    assert f'href="{notes}"' in block
    assert ">Tech_Notes.pdf<" in block
    assert "2.0\xa0KB" in block
    assert "2026-03-04 10:30" in block
    for name in ("run1.edat2", "run2.edat2"):
        assert f'href="{file_url("SPINS", f"task/{session.name}/{name}")}"' in block
        assert f">{name}<" in block
    assert "1.5\xa0KB" in block


def test_session_files_link_opens_file(reviewer_client, session, tmp_path):
    add_files(session, task_count=1)
    study = session.timepoint.study
    study.archive_path = str(tmp_path)
    study.save()
    path = tmp_path / "task" / session.name / "run1.edat2"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"task data")

    response = reviewer_client.get(file_url("SPINS", f"task/{session.name}/run1.edat2"))

    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"task data"


def test_session_missing_tech_notes_shown(reviewer_client, session):
    response = reviewer_client.get(timepoint_url(session.timepoint.name))

    block = files_block(response.text, session)
    assert 'data-file="tech-notes-missing"' in block
    assert f"data/RESOURCES/{session.name}/" in block


def test_session_files_hidden_without_switch(reviewer_client, session):
    StudySite.objects.update(uses_tech_notes=False)

    response = reviewer_client.get(timepoint_url(session.timepoint.name))

    assert "data-session-files" not in response.text


def test_phantom_not_asked_for_tech_notes(reviewer_client, session):
    phantom = SessionFactory(
        timepoint=PhantomTimepointFactory(study_site=session.timepoint.study_site)
    )

    response = reviewer_client.get(timepoint_url(phantom.timepoint.name))

    assert response.status_code == 200
    assert "tech-notes-missing" not in response.text


def test_site_reviewer_cannot_open_other_site_notes(client, session, tmp_path):
    """A member limited to another site gets 404 for the session's tech notes."""
    add_files(session, task_count=0)
    study = session.timepoint.study
    study.archive_path = str(tmp_path)
    study.save()
    notes = tmp_path / session.tech_notes_path
    notes.parent.mkdir(parents=True)
    notes.write_bytes(b"%PDF-1.4\n")
    other_site = StudySiteFactory(study=study, site=SiteFactory(name="ZHH"), code="SPN01").site
    member = UserFactory(username="zhh")
    StudyMembership.objects.create(user=member, study=study, site=other_site, role=Role.RA)
    client.force_login(member)

    assert client.get(file_url("SPINS", session.tech_notes_path)).status_code == 404


@pytest.mark.parametrize("count", [1, 20])
def test_timepoint_query_count_with_files(
    reviewer_client, django_assert_num_queries, session, count
):
    timepoint = session.timepoint
    add_files(session)
    for number in range(2, count + 1):
        add_files(SessionFactory(timepoint=timepoint, number=number))

    # The same 16 queries as without files (see test_views_timepoint): the task files of every
    # session come in one prefetch, and the tech notes are columns of the session.
    with django_assert_num_queries(16):
        response = reviewer_client.get(timepoint_url(timepoint.name))

    assert response.text.count('data-file="tech-notes"') == count
    assert response.text.count("data-task-file=") == 2 * count
