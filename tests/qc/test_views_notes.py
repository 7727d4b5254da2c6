import re
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import Role, StudyMembership
from notifications.models import Notification
from qc import history, notes_services
from qc.models import (
    FindingNote,
    IncidentalFinding,
    QCState,
    ScanReview,
    TimepointComment,
    TimepointCommentRevision,
)
from studies.services import delete_object
from tests.qc.factories import ScanReviewFactory
from tests.qc.scenarios import make_study_site
from tests.studies.factories import (
    ScanFactory,
    SessionFactory,
    SiteFactory,
    StudySiteFactory,
    TimepointFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def timepoint(reviewer):
    session = SessionFactory(timepoint=TimepointFactory(study_site=make_study_site()))
    ScanFactory(session=session, series=2)
    return session.timepoint


# Session, user, the comment with its timepoint, the role check and the newest revision.
QUERIES_COMMENT_DELETE_PAGE = 5


def page_url(timepoint):
    return reverse("qc:timepoint_detail", args=[timepoint.name])


def member(timepoint, username, role, *, site=None, **flags):
    user = UserFactory(username=username)
    StudyMembership.objects.create(user=user, study=timepoint.study, role=role, site=site, **flags)
    return user


def section(html, section_id):
    match = re.search(rf'<section[^>]* id="{section_id}".*?</section>', html, re.S)
    assert match, f"no section {section_id}"
    return match.group(0)


# --- Comments -------------------------------------------------------------------------------


def test_comment_add_shows_on_page(reviewer_client, timepoint):
    response = reviewer_client.post(
        reverse("qc:comment_add", args=[timepoint.name]), {"text": "Arrived late."}
    )

    comment = TimepointComment.objects.get()
    assert response.status_code == 302
    assert response.url == f"{page_url(timepoint)}#comment-{comment.pk}"
    page = reviewer_client.get(page_url(timepoint)).text
    assert "Arrived late." in section(page, "comments")
    assert "commented" in section(page, "history")


def test_comment_odd_text_escaped(reviewer_client, timepoint):
    long_word = "a" * 400
    text = f"<script>alert(1)</script> <b>bold</b> Ñandú 🧠 {long_word}"
    reviewer_client.post(reverse("qc:comment_add", args=[timepoint.name]), {"text": text})

    comments = section(reviewer_client.get(page_url(timepoint)).text, "comments")

    assert "<script>alert(1)" not in comments
    assert "<b>bold" not in comments
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in comments
    assert "Ñandú 🧠" in comments
    assert re.search(rf'class="qc-comment timepoint-comment-text[^"]*">[^<]*{long_word}', comments)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "The comment is empty; write some text and save again."),
        ("z" * 5001, "The comment is 5001 characters long; shorten it to at most 5000."),
    ],
)
def test_comment_add_bad_text_keeps_form(reviewer_client, timepoint, text, message):
    response = reviewer_client.post(
        reverse("qc:comment_add", args=[timepoint.name]), {"text": text}
    )

    assert response.status_code == 200
    assert TimepointComment.objects.count() == 0
    comments = section(response.text, "comments")
    assert message in comments
    assert re.search(rf">\s*{text}</textarea>", comments)


def test_comment_add_by_viewer_denied(client, timepoint):
    client.force_login(member(timepoint, "viewer", Role.VIEWER))

    response = client.post(reverse("qc:comment_add", args=[timepoint.name]), {"text": "Hi."})

    assert response.status_code == 403
    assert TimepointComment.objects.count() == 0


def test_comment_form_hidden_from_viewer(client, timepoint, reviewer):
    notes_services.add_comment(timepoint=timepoint, author=reviewer, text="Seen by all.")
    client.force_login(member(timepoint, "viewer", Role.VIEWER))

    comments = section(client.get(page_url(timepoint)).text, "comments")

    assert "Seen by all." in comments
    assert reverse("qc:comment_add", args=[timepoint.name]) not in comments
    assert "Edit or delete" not in comments


def test_comment_edit_keeps_earlier_versions(reviewer_client, timepoint, reviewer):
    comment = notes_services.add_comment(timepoint=timepoint, author=reviewer, text="First.")

    response = reviewer_client.post(
        reverse("qc:comment_edit", args=[comment.pk]), {"text": "Second."}
    )

    assert response.status_code == 302
    comments = section(reviewer_client.get(page_url(timepoint)).text, "comments")
    assert ">edited</span>" in comments
    assert "Earlier versions (1)" in comments
    versions = re.search(r'<details class="mt-1 comment-versions">.*?</details>', comments, re.S)
    assert "First." in versions.group(0)
    assert "Second." not in versions.group(0)


def test_comment_edit_bad_text_keeps_form_open(reviewer_client, timepoint, reviewer):
    comment = notes_services.add_comment(timepoint=timepoint, author=reviewer, text="First.")

    response = reviewer_client.post(reverse("qc:comment_edit", args=[comment.pk]), {"text": " "})

    assert response.status_code == 200
    assert comment.revisions.count() == 1
    comments = section(response.text, "comments")
    assert '<details class="mt-2 comment-edit" open>' in comments
    assert "The comment is empty" in comments


def test_comment_edit_by_other_member_denied(client, timepoint, reviewer):
    comment = notes_services.add_comment(timepoint=timepoint, author=reviewer, text="First.")
    client.force_login(member(timepoint, "other_ra", Role.RA))

    edit = client.post(reverse("qc:comment_edit", args=[comment.pk]), {"text": "Mine."})
    delete = client.post(reverse("qc:comment_delete", args=[comment.pk]))

    assert edit.status_code == 403
    assert delete.status_code == 403
    assert comment.revisions.count() == 1
    assert TimepointComment.objects.get().deleted_at is None


def test_comment_of_other_site_not_found(client, timepoint, reviewer):
    comment = notes_services.add_comment(timepoint=timepoint, author=reviewer, text="First.")
    other_site = StudySiteFactory(study=timepoint.study, site=SiteFactory(name="ZHH"))
    client.force_login(member(timepoint, "zhh_ra", Role.RA, site=other_site.site))

    edit = client.post(reverse("qc:comment_edit", args=[comment.pk]), {"text": "Mine."})
    unknown = client.post(reverse("qc:comment_edit", args=[comment.pk + 100]), {"text": "x"})

    assert edit.status_code == 404
    assert unknown.status_code == 404


def test_comment_delete_shows_who(reviewer_client, timepoint, reviewer):
    comment = notes_services.add_comment(timepoint=timepoint, author=reviewer, text="Secret.")

    response = reviewer_client.post(reverse("qc:comment_delete", args=[comment.pk]))

    assert response.status_code == 302
    page = reviewer_client.get(page_url(timepoint)).text
    comments = section(page, "comments")
    assert "Secret." not in page
    assert f"Comment deleted by {reviewer.display_name}" in comments
    assert "deleted a comment" in section(page, "history")
    assert TimepointCommentRevision.objects.get().text == "Secret."


def test_comment_edit_after_delete_keeps_text(reviewer_client, timepoint, reviewer):
    comment = notes_services.add_comment(timepoint=timepoint, author=reviewer, text="First.")
    notes_services.delete_comment(comment=comment, user=reviewer)

    response = reviewer_client.post(
        reverse("qc:comment_edit", args=[comment.pk]), {"text": "Typed after deletion."}
    )

    assert response.status_code == 200
    assert comment.revisions.count() == 1
    assert "a deleted comment cannot be changed. Add a new comment instead." in response.text
    new_comment_form = re.search(r'<form[^>]*class="comment-form".*?</form>', response.text, re.S)
    assert "Typed after deletion." in new_comment_form.group(0)


def test_comment_delete_asks_first(reviewer_client, timepoint, reviewer):
    comment = notes_services.add_comment(timepoint=timepoint, author=reviewer, text="Secret.")
    notes_services.edit_comment(comment=comment, editor=reviewer, text="Secret, edited.")
    url = reverse("qc:comment_delete", args=[comment.pk])

    page = reviewer_client.get(page_url(timepoint)).text
    confirmation = reviewer_client.get(url)

    assert f'href="{url}"' in section(page, "comments")
    assert confirmation.status_code == 200
    assert "Secret, edited." in confirmation.text
    assert '<form method="post" class="delete-form">' in confirmation.text
    assert f'href="{page_url(timepoint)}#comment-{comment.pk}"' in confirmation.text
    assert TimepointComment.objects.get().deleted_at is None


def test_comment_delete_page_queries(
    reviewer_client, timepoint, reviewer, django_assert_num_queries
):
    comment = notes_services.add_comment(timepoint=timepoint, author=reviewer, text="First.")
    for number in range(20):
        notes_services.edit_comment(comment=comment, editor=reviewer, text=f"Version {number}.")
    url = reverse("qc:comment_delete", args=[comment.pk])
    reviewer_client.get(url)

    with django_assert_num_queries(QUERIES_COMMENT_DELETE_PAGE):
        response = reviewer_client.get(url)

    assert "Version 19." in response.text


def test_deleted_comment_page_has_no_form(reviewer_client, timepoint, reviewer):
    comment = notes_services.add_comment(timepoint=timepoint, author=reviewer, text="First.")
    notes_services.delete_comment(comment=comment, user=reviewer)

    response = reviewer_client.get(reverse("qc:comment_delete", args=[comment.pk]))

    assert response.status_code == 200
    assert "This comment was deleted on" in response.text
    assert "delete-form" not in response.text


def test_comment_delete_twice_shows_error(reviewer_client, timepoint, reviewer):
    comment = notes_services.add_comment(timepoint=timepoint, author=reviewer, text="First.")
    notes_services.delete_comment(comment=comment, user=reviewer)

    response = reviewer_client.post(reverse("qc:comment_delete", args=[comment.pk]), follow=True)

    assert "This comment was deleted on" in response.text


# --- Incidental findings --------------------------------------------------------------------


@pytest.fixture
def finding(timepoint, reviewer):
    return notes_services.report_finding(
        timepoint=timepoint, reporter=reviewer, description="Enlarged ventricle."
    )


@pytest.mark.parametrize(
    ("username", "role", "flags"),
    [
        ("admin_of_study", Role.STUDY_ADMIN, {}),
        ("pi", Role.VIEWER, {"is_primary_contact": True}),
        ("staff", Role.VIEWER, {"is_staff_contact": True}),
    ],
)
def test_finding_seen_by_admins_and_contacts(client, timepoint, finding, username, role, flags):
    client.force_login(member(timepoint, username, role, **flags))

    findings = section(client.get(page_url(timepoint)).text, "findings")

    assert "Enlarged ventricle." in findings
    assert 'data-finding-count="1"' in findings


def test_finding_seen_by_reporter(reviewer_client, timepoint, finding):
    findings = section(reviewer_client.get(page_url(timepoint)).text, "findings")

    assert "Enlarged ventricle." in findings
    assert "Add a note or mark resolved" not in findings


def test_finding_hidden_from_viewer(client, timepoint, finding):
    client.force_login(member(timepoint, "viewer", Role.VIEWER))

    page = client.get(page_url(timepoint)).text

    assert 'id="findings"' not in page
    assert "data-finding-count" not in page
    assert "Enlarged ventricle." not in page


def test_finding_hidden_from_other_reviewer(client, timepoint, finding):
    client.force_login(member(timepoint, "other_reviewer", Role.QC_REVIEWER))

    page = client.get(page_url(timepoint)).text

    assert "Enlarged ventricle." not in page
    assert 'data-finding-count="0"' in section(page, "findings")
    assert "Report an incidental finding" in page


def test_finding_hidden_from_contact_of_other_site(client, timepoint, finding):
    other_site = StudySiteFactory(study=timepoint.study, site=SiteFactory(name="ZHH"))
    other_timepoint = TimepointFactory(study_site=other_site)
    contact = member(
        timepoint, "zhh_pi", Role.STUDY_ADMIN, site=other_site.site, is_primary_contact=True
    )
    client.force_login(contact)

    response = client.get(page_url(timepoint))
    note = client.post(
        reverse("qc:finding_note_add", args=[finding.pk]), {"text": "Seen.", "marks_resolved": ""}
    )

    assert response.status_code == 404
    assert note.status_code == 404
    other_page = client.get(page_url(other_timepoint)).text
    assert 'data-finding-count="0"' in section(other_page, "findings")


def test_finding_report_notifies_contacts(
    reviewer_client, timepoint, django_capture_on_commit_callbacks
):
    member(timepoint, "pi", Role.VIEWER, is_primary_contact=True)

    with django_capture_on_commit_callbacks(execute=True):
        response = reviewer_client.post(
            reverse("qc:finding_report", args=[timepoint.name]),
            {"description": "Possible meningioma, right frontal."},
        )

    finding = IncidentalFinding.objects.get()
    assert response.status_code == 302
    assert response.url == f"{page_url(timepoint)}#finding-{finding.pk}"
    notification = Notification.objects.get()
    assert notification.recipient.username == "pi"
    assert notification.key == f"incidental-finding:{finding.pk}"
    pi = notification.recipient
    page = reviewer_client.get(response.url).text
    assert f"Incidental finding reported; emailing {pi.get_full_name() or pi.username}." in page


def test_finding_report_says_when_nobody_is_emailed(
    reviewer_client, timepoint, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = reviewer_client.post(
            reverse("qc:finding_report", args=[timepoint.name]),
            {"description": "Possible meningioma, right frontal."},
            follow=True,
        )

    assert IncidentalFinding.objects.count() == 1
    assert Notification.objects.count() == 0
    assert (
        f"{timepoint.study} has no primary or staff contact, so nobody was emailed" in response.text
    )


@pytest.mark.parametrize(
    ("description", "message"),
    [
        ("", "The description is empty; write some text and save again."),
        ("q" * 5001, "The description is 5001 characters long; shorten it to at most 5000."),
    ],
)
def test_finding_report_bad_description(
    reviewer_client, timepoint, description, message, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = reviewer_client.post(
            reverse("qc:finding_report", args=[timepoint.name]), {"description": description}
        )

    assert response.status_code == 200
    findings = section(response.text, "findings")
    assert message in findings
    assert re.search(rf">\s*{description}</textarea>", findings)
    assert IncidentalFinding.objects.count() == 0
    assert Notification.objects.count() == 0


def test_finding_report_by_viewer_denied(client, timepoint):
    client.force_login(member(timepoint, "viewer", Role.VIEWER))

    response = client.post(
        reverse("qc:finding_report", args=[timepoint.name]), {"description": "A cyst."}
    )

    assert response.status_code == 403
    assert IncidentalFinding.objects.count() == 0


def test_finding_note_marks_resolved(client, timepoint, finding):
    client.force_login(member(timepoint, "staff", Role.VIEWER, is_staff_contact=True))

    response = client.post(
        reverse("qc:finding_note_add", args=[finding.pk]),
        {"text": "Participant informed.", "marks_resolved": "on"},
    )

    assert response.status_code == 302
    note = FindingNote.objects.get()
    assert note.marks_resolved is True
    findings = section(client.get(page_url(timepoint)).text, "findings")
    assert "marked resolved" in findings
    assert "Participant informed." in findings


def test_finding_note_empty_keeps_form(client, timepoint, finding):
    client.force_login(member(timepoint, "admin_of_study", Role.STUDY_ADMIN))

    response = client.post(reverse("qc:finding_note_add", args=[finding.pk]), {"text": ""})

    assert response.status_code == 200
    assert FindingNote.objects.count() == 0
    assert "The note is empty" in section(response.text, "findings")


def test_finding_note_by_reporter_denied(reviewer_client, finding):
    response = reviewer_client.post(
        reverse("qc:finding_note_add", args=[finding.pk]), {"text": "Follow-up."}
    )

    assert response.status_code == 403
    assert FindingNote.objects.count() == 0


# --- History and query counts ---------------------------------------------------------------


def add_events(timepoint, reviewer, count):
    """`count` each of reviews, comments (each edited once) and incidental findings with a
    note."""
    scan = timepoint.sessions.get().scans.get()
    for index in range(count):
        ScanReviewFactory(scan=scan, state=QCState.FLAGGED, comment=f"c{index}", reviewer=reviewer)
        comment = notes_services.add_comment(
            timepoint=timepoint, author=reviewer, text=f"comment {index}"
        )
        notes_services.edit_comment(comment=comment, editor=reviewer, text=f"edited {index}")
        finding = notes_services.report_finding(
            timepoint=timepoint, reporter=reviewer, description=f"finding {index}"
        )
        notes_services.add_finding_note(finding=finding, author=reviewer, text="Checked.")


@pytest.mark.parametrize("count", [1, 20])
def test_timepoint_page_query_count_with_notes(
    reviewer_client, reviewer, timepoint, django_assert_num_queries, count
):
    add_events(timepoint, reviewer, count)

    # The 16 queries of the timepoint page (as in test_timepoint_query_count), and, because
    # there are comments and findings, 17 the comments' revisions, 18 the findings' notes and
    # 19 whether the reviewer is a study contact (to follow findings up).
    with django_assert_num_queries(19):
        response = reviewer_client.get(page_url(timepoint))

    assert len(response.context["comments"]) == count
    assert len(response.context["findings"]) == count
    # Each round adds a review, a comment and its edit; findings stay out of the history.
    events = response.context["history"].events
    assert len(events) == min(3 * count, history.HISTORY_PREVIEW_LENGTH)
    assert response.context["history"].has_more is (count > 3)


@pytest.mark.parametrize("count", [1, 20])
def test_history_page_query_count(
    reviewer_client, reviewer, timepoint, django_assert_num_queries, count
):
    add_events(timepoint, reviewer, count)

    # 1 session, 2 user, 3 timepoint with study, 4 event count, 5 the page of events.
    with django_assert_num_queries(5):
        response = reviewer_client.get(reverse("qc:timepoint_history", args=[timepoint.name]))

    assert response.status_code == 200
    assert len(response.context["history"].events) == 3 * count


def test_history_page_paginated(reviewer_client, reviewer, timepoint):
    scan = timepoint.sessions.get().scans.get()
    start = timezone.now() - timedelta(days=1)
    for index in range(101):
        review = ScanReviewFactory(scan=scan, reviewer=reviewer)
        ScanReview.objects.filter(pk=review.pk).update(created_at=start + timedelta(minutes=index))
    url = reverse("qc:scan_history", args=[scan.name])

    first = reviewer_client.get(url)
    second = reviewer_client.get(url, {"page": 2})

    assert len(first.context["history"].events) == 100
    assert first.context["history"].events[0].at == start + timedelta(minutes=100)
    assert len(second.context["history"].events) == 1
    assert "Page 1 of 2" in first.text


def test_scan_page_history_links_show_all(reviewer_client, reviewer, timepoint):
    scan = timepoint.sessions.get().scans.get()
    for _ in range(history.HISTORY_PREVIEW_LENGTH + 1):
        ScanReviewFactory(scan=scan, reviewer=reviewer)

    page = reviewer_client.get(reverse("qc:scan_detail", args=[scan.name])).text

    timeline = section(page, "history")
    assert timeline.count("data-history-kind=") == history.HISTORY_PREVIEW_LENGTH
    assert f'href="{reverse("qc:scan_history", args=[scan.name])}"' in timeline


def test_history_shows_time_zone(reviewer_client, reviewer, timepoint, settings):
    settings.TIME_ZONE = "America/Toronto"
    scan = timepoint.sessions.get().scans.get()
    review = ScanReviewFactory(scan=scan, reviewer=reviewer)
    ScanReview.objects.filter(pk=review.pk).update(
        created_at=datetime(2026, 1, 15, 17, 30, tzinfo=UTC)
    )

    timeline = section(reviewer_client.get(page_url(timepoint)).text, "history")

    assert "2026-01-15 12:30 EST" in timeline
    assert 'datetime="2026-01-15T12:30:00-05:00"' in timeline


# --- Admin site -----------------------------------------------------------------------------


@pytest.fixture
def admin_client(client):
    user = UserFactory(username="admin", is_staff=True, is_superuser=True, is_dashboard_admin=True)
    client.force_login(user)
    return client


def test_admin_shows_deleted_comment_revisions(admin_client, timepoint, reviewer):
    comment = notes_services.add_comment(timepoint=timepoint, author=reviewer, text="First.")
    notes_services.edit_comment(comment=comment, editor=reviewer, text="Second.")
    notes_services.delete_comment(comment=comment, user=reviewer)

    listing = admin_client.get(reverse("admin:qc_timepointcomment_changelist"))
    detail = admin_client.get(reverse("admin:qc_timepointcomment_change", args=[comment.pk]))

    assert listing.status_code == 200
    assert timepoint.name in listing.text
    assert detail.status_code == 200
    assert "First." in detail.text
    assert "Second." in detail.text
    assert 'name="_save"' not in detail.text


def test_admin_findings_read_only(admin_client, finding):
    FindingNote.objects.create(finding=finding, author=finding.reporter, text="Called the PI.")

    detail = admin_client.get(reverse("admin:qc_incidentalfinding_change", args=[finding.pk]))
    add = admin_client.get(reverse("admin:qc_incidentalfinding_add"))
    delete = admin_client.post(
        reverse("admin:qc_incidentalfinding_delete", args=[finding.pk]), {"post": "yes"}
    )

    assert detail.status_code == 200
    assert "Enlarged ventricle." in detail.text
    assert "Called the PI." in detail.text
    assert add.status_code == 403
    assert delete.status_code == 403
    assert IncidentalFinding.objects.count() == 1


# --- Notes of a deleted timepoint -----------------------------------------------------------


@pytest.fixture
def deleted_timepoint_notes(timepoint, reviewer):
    """A comment and a finding by the reviewer on `timepoint`, which an admin then deletes."""
    comment = notes_services.add_comment(timepoint=timepoint, author=reviewer, text="Kept.")
    finding = notes_services.report_finding(
        timepoint=timepoint, reporter=reviewer, description="A cyst."
    )
    admin = UserFactory(username="deleter", is_dashboard_admin=True)
    delete_object(timepoint, user=admin, reason="Enrolled by mistake.")
    return comment, finding


def test_deleted_timepoint_comment_edit_not_found(reviewer_client, deleted_timepoint_notes):
    comment, _finding = deleted_timepoint_notes

    response = reviewer_client.post(reverse("qc:comment_edit", args=[comment.pk]), {"text": "X"})

    assert response.status_code == 404
    assert list(comment.revisions.values_list("text", flat=True)) == ["Kept."]


def test_deleted_timepoint_comment_delete_not_found(reviewer_client, deleted_timepoint_notes):
    comment, _finding = deleted_timepoint_notes

    response = reviewer_client.post(reverse("qc:comment_delete", args=[comment.pk]))

    assert response.status_code == 404
    comment.refresh_from_db()
    assert comment.deleted_at is None


def test_deleted_timepoint_finding_note_not_found(client, timepoint, deleted_timepoint_notes):
    _comment, finding = deleted_timepoint_notes
    client.force_login(member(timepoint, "admin_of_study", Role.STUDY_ADMIN))

    response = client.post(
        reverse("qc:finding_note_add", args=[finding.pk]), {"text": "Seen.", "marks_resolved": "on"}
    )

    assert response.status_code == 404
    assert FindingNote.objects.count() == 0


@pytest.mark.parametrize(
    ("url_name", "data"),
    [("qc:comment_add", {"text": "Late."}), ("qc:finding_report", {"description": "A cyst."})],
)
def test_deleted_timepoint_add_not_found(
    reviewer_client, timepoint, deleted_timepoint_notes, url_name, data
):
    response = reviewer_client.post(reverse(url_name, args=[timepoint.name]), data)

    assert response.status_code == 404
    assert TimepointComment.objects.count() == 1
    assert IncidentalFinding.objects.count() == 1
