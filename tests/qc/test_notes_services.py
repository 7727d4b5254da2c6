import pytest
from django.core import mail
from django.db import IntegrityError, transaction
from django_q.conf import Conf

from accounts.models import Role, StudyMembership
from notifications.models import Notification, NotificationKind
from qc import notes_services
from qc.models import FindingNote, IncidentalFinding, TimepointComment, TimepointCommentRevision
from tests.studies.factories import SessionFactory, SiteFactory, StudySiteFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def timepoint():
    return SessionFactory().timepoint


@pytest.fixture
def author():
    return UserFactory(username="author", first_name="Ada", last_name="Lovelace")


def test_add_comment_keeps_first_revision(timepoint, author):
    comment = notes_services.add_comment(timepoint=timepoint, author=author, text="  Late.  ")

    revisions = list(comment.revisions.values_list("text", flat=True))
    assert revisions == ["Late."]
    assert comment.deleted_at is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "The comment is empty; write some text"),
        ("   \n ", "The comment is empty; write some text"),
        ("a\x00b", "contains a NUL character"),
        ("x" * 5001, "is 5001 characters long; shorten it to at most 5000"),
    ],
)
def test_add_comment_bad_text(timepoint, author, text, message):
    with pytest.raises(notes_services.NoteError, match=message):
        notes_services.add_comment(timepoint=timepoint, author=author, text=text)

    assert TimepointComment.objects.count() == 0


def test_add_comment_at_length_limit(timepoint, author):
    comment = notes_services.add_comment(timepoint=timepoint, author=author, text="x" * 5000)

    assert len(comment.revisions.get().text) == 5000


def test_edit_comment_keeps_earlier_text(timepoint, author):
    comment = notes_services.add_comment(timepoint=timepoint, author=author, text="First.")

    notes_services.edit_comment(comment=comment, editor=author, text="Second.")
    notes_services.edit_comment(comment=comment, editor=author, text="Third.")

    texts = list(comment.revisions.order_by("id").values_list("text", flat=True))
    assert texts == ["First.", "Second.", "Third."]


def test_edit_comment_by_other_rejected(timepoint, author):
    comment = notes_services.add_comment(timepoint=timepoint, author=author, text="First.")

    with pytest.raises(notes_services.NoteError, match="Only the author"):
        notes_services.edit_comment(comment=comment, editor=UserFactory(), text="Mine now.")

    assert comment.revisions.count() == 1


def test_edit_comment_unchanged_rejected(timepoint, author):
    comment = notes_services.add_comment(timepoint=timepoint, author=author, text="First.")

    with pytest.raises(notes_services.NoteError, match="unchanged"):
        notes_services.edit_comment(comment=comment, editor=author, text=" First. ")

    assert comment.revisions.count() == 1


def test_edit_deleted_comment_rejected(timepoint, author):
    comment = notes_services.add_comment(timepoint=timepoint, author=author, text="First.")
    notes_services.delete_comment(comment=comment, user=author)

    with pytest.raises(notes_services.CommentDeletedError, match="was deleted on .* UTC"):
        notes_services.edit_comment(comment=comment, editor=author, text="Again.")

    assert comment.revisions.count() == 1


def test_delete_comment_keeps_row(timepoint, author):
    comment = notes_services.add_comment(timepoint=timepoint, author=author, text="First.")

    notes_services.delete_comment(comment=comment, user=author)

    comment.refresh_from_db()
    assert comment.deleted_at is not None
    assert comment.deleted_by == author
    assert TimepointCommentRevision.objects.filter(comment=comment).count() == 1


def test_delete_comment_twice_rejected(timepoint, author):
    comment = notes_services.add_comment(timepoint=timepoint, author=author, text="First.")
    notes_services.delete_comment(comment=comment, user=author)
    deleted_at = TimepointComment.objects.get().deleted_at

    with pytest.raises(notes_services.CommentDeletedError):
        notes_services.delete_comment(comment=comment, user=author)

    assert TimepointComment.objects.get().deleted_at == deleted_at


def test_delete_comment_by_other_rejected(timepoint, author):
    comment = notes_services.add_comment(timepoint=timepoint, author=author, text="First.")

    with pytest.raises(notes_services.NoteError, match="Only the author"):
        notes_services.delete_comment(comment=comment, user=UserFactory())

    assert TimepointComment.objects.get().deleted_at is None


def test_report_finding_notifies_contacts_after_commit(
    timepoint, author, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(Conf, "SYNC", True)
    pi = UserFactory(username="pi")
    StudyMembership.objects.create(
        user=pi, study=timepoint.study, role=Role.VIEWER, is_primary_contact=True
    )

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        finding = notes_services.report_finding(
            timepoint=timepoint, reporter=author, description="A cyst in the left temporal lobe."
        )
    assert Notification.objects.count() == 0
    for callback in callbacks:
        with django_capture_on_commit_callbacks(execute=True):
            callback()

    notification = Notification.objects.get()
    assert notification.kind == NotificationKind.INCIDENTAL_FINDING
    assert notification.key == f"incidental-finding:{finding.pk}"
    assert notification.recipient == pi
    assert "A cyst in the left temporal lobe." in notification.body_text
    assert len(mail.outbox) == 1


def test_report_finding_skips_contacts_of_other_sites(
    timepoint, author, django_capture_on_commit_callbacks
):
    other_site = StudySiteFactory(study=timepoint.study, site=SiteFactory(name="ZHH"))
    for username, site in (("here", timepoint.study_site.site), ("there", other_site.site)):
        StudyMembership.objects.create(
            user=UserFactory(username=username),
            study=timepoint.study,
            site=site,
            role=Role.VIEWER,
            is_staff_contact=True,
        )

    with django_capture_on_commit_callbacks(execute=True):
        notes_services.report_finding(timepoint=timepoint, reporter=author, description="Cyst.")

    recipients = set(Notification.objects.values_list("recipient__username", flat=True))
    assert recipients == {"here"}


@pytest.mark.parametrize(
    ("description", "message"),
    [("", "The description is empty"), ("y" * 5001, "is 5001 characters long")],
)
def test_report_finding_bad_description(
    timepoint, author, description, message, django_capture_on_commit_callbacks
):
    with (
        django_capture_on_commit_callbacks() as callbacks,
        pytest.raises(notes_services.NoteError, match=message),
    ):
        notes_services.report_finding(timepoint=timepoint, reporter=author, description=description)

    assert IncidentalFinding.objects.count() == 0
    assert callbacks == []


def test_finding_note_needs_text_unless_resolving(timepoint, author):
    finding = notes_services.report_finding(
        timepoint=timepoint, reporter=author, description="A cyst."
    )

    with pytest.raises(notes_services.NoteError, match="The note is empty"):
        notes_services.add_finding_note(finding=finding, author=author, text=" ")
    resolved = notes_services.add_finding_note(
        finding=finding, author=author, text="", marks_resolved=True
    )

    assert FindingNote.objects.get() == resolved
    assert resolved.marks_resolved is True


def test_timepoint_comment_constraint_pairs_deletion(timepoint, author):
    with pytest.raises(IntegrityError), transaction.atomic():
        TimepointComment.objects.create(timepoint=timepoint, author=author, deleted_by=author)
