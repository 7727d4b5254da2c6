"""Study README: Markdown rendering with the sanitiser's allow-list, and the save service."""

from datetime import UTC, datetime

import pytest
from django.core.exceptions import PermissionDenied

from accounts.models import Role, StudyMembership
from studies.models import StudyReadme
from studies.readme import README_MAX_CHARS, render_readme
from studies.services import StudyReadmeError, newest_readme, save_study_readme
from tests.studies.factories import SiteFactory, StudyFactory, UserFactory


def test_render_markdown_basics():
    html = render_readme(
        "# Protocol\n\n- **T1** first\n- `RST` second\n\n| a | b |\n|---|---|\n| 1 | 2 |"
    )

    assert "<h1>Protocol</h1>" in html
    assert "<li><strong>T1</strong> first</li>" in html
    assert "<code>RST</code>" in html
    assert "<td>1</td>" in html


def test_render_removes_script_and_its_text():
    html = render_readme("Hello\n\n<script>document.title = 'owned';</script>\n\nbye")

    assert "<script" not in html
    assert "owned" not in html
    assert "Hello" in html
    assert "bye" in html


def test_render_removes_event_handlers():
    html = render_readme('<img src="x" onerror="alert(1)"> <p onclick="alert(2)">text</p>')

    assert "onerror" not in html
    assert "onclick" not in html
    assert "<img" not in html
    assert "alert" not in html
    assert "text" in html


@pytest.mark.parametrize(
    "link",
    [
        "[click](javascript:alert(1))",
        '<a href="javascript:alert(1)">click</a>',
        '<a href="JaVaScRiPt:alert(1)">click</a>',
        '<a href=" javascript:alert(1)">click</a>',
        "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
        '<a href="vbscript:msgbox(1)">click</a>',
    ],
)
def test_render_drops_unsafe_link_targets(link):
    html = render_readme(link)

    assert "href" not in html
    assert "click" in html


def test_render_links_get_rel():
    html = render_readme("[datman](https://github.com/TIGRLab/datman) and [doc](/docs/)")

    assert (
        '<a href="https://github.com/TIGRLab/datman" rel="noopener noreferrer">datman</a>' in html
    )
    assert '<a href="/docs/" rel="noopener noreferrer">doc</a>' in html


def test_render_removes_raw_html_containers():
    html = render_readme(
        '<iframe src="https://example.org"></iframe>\n\n<style>body{display:none}</style>\n\n'
        '<div style="color:red" class="x">raw <b>bold</b></div>\n\n<object data="x"></object>'
        '<form action="/x"><input name="a"></form>'
    )

    for fragment in ("<iframe", "<style", "display:none", "style=", "class=", "<div"):
        assert fragment not in html
    for fragment in ("<object", "<form", "<input"):
        assert fragment not in html
    assert "raw <b>bold</b>" in html


def test_render_code_block_shows_html_as_text():
    html = render_readme("```\n<script>alert(1)</script>\n```")

    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>" not in html


def test_render_huge_text_stays_inert():
    text = "<script>x()</script>" * 2000 + "[a](javascript:b)" * 2000

    html = render_readme(text)

    assert "<script" not in html
    assert "javascript:" not in html


@pytest.fixture
def study(db):
    return StudyFactory(nickname="SPINS")


@pytest.fixture
def admin(study):
    user = UserFactory(username="admin-of-spins")
    StudyMembership.objects.create(user=user, study=study, role=Role.STUDY_ADMIN)
    return user


def test_save_keeps_every_version(study, admin):
    first = save_study_readme(study=study, author=admin, text="First text")
    second = save_study_readme(study=study, author=admin, text="Second text", based_on_id=first.pk)

    assert list(StudyReadme.objects.filter(study=study).values_list("text", flat=True)) == [
        "Second text",
        "First text",
    ]
    assert newest_readme(study) == second
    assert second.author == admin


def test_save_unchanged_text_adds_no_version(study, admin):
    first = save_study_readme(study=study, author=admin, text="Same\r\ntext")

    unchanged = save_study_readme(
        study=study, author=admin, text="Same\ntext\n", based_on_id=first.pk
    )

    assert unchanged is None
    assert StudyReadme.objects.count() == 1
    assert first.text == "Same\ntext"


def test_save_empty_first_readme_adds_nothing(study, admin):
    assert save_study_readme(study=study, author=admin, text="   ") is None
    assert not StudyReadme.objects.exists()


def test_save_clearing_readme_is_a_version(study, admin):
    first = save_study_readme(study=study, author=admin, text="Old notes")

    cleared = save_study_readme(study=study, author=admin, text="", based_on_id=first.pk)

    assert cleared.text == ""
    assert StudyReadme.objects.count() == 2


def test_save_rejects_text_over_limit(study, admin):
    text = "x" * (README_MAX_CHARS + 1)

    with pytest.raises(StudyReadmeError) as raised:
        save_study_readme(study=study, author=admin, text=text)

    message = str(raised.value)
    assert f"{README_MAX_CHARS + 1:,} characters" in message
    assert f"limit of {README_MAX_CHARS:,}" in message
    assert not StudyReadme.objects.exists()


def test_save_accepts_text_at_limit(study, admin):
    readme = save_study_readme(study=study, author=admin, text="x" * README_MAX_CHARS)

    assert len(readme.text) == README_MAX_CHARS


def test_save_rejects_nul(study, admin):
    with pytest.raises(StudyReadmeError, match="NUL character"):
        save_study_readme(study=study, author=admin, text="a\x00b")


def test_save_rejects_stale_version(study, admin):
    first = save_study_readme(study=study, author=admin, text="First")
    save_study_readme(study=study, author=admin, text="Second", based_on_id=first.pk)

    with pytest.raises(StudyReadmeError, match="saved a newer version"):
        save_study_readme(study=study, author=admin, text="Third", based_on_id=first.pk)
    assert newest_readme(study).text == "Second"


@pytest.mark.parametrize(("role", "site"), [(Role.RA, False), (Role.STUDY_ADMIN, True)])
def test_save_needs_study_wide_admin(study, role, site):
    user = UserFactory(username="someone")
    StudyMembership.objects.create(
        user=user, study=study, role=role, site=SiteFactory(name="CMH") if site else None
    )

    with pytest.raises(PermissionDenied):
        save_study_readme(study=study, author=user, text="Notes")
    assert not StudyReadme.objects.exists()


def test_save_first_readme_twice_conflicts(study, admin):
    other = UserFactory(username="bob")
    StudyMembership.objects.create(user=other, study=study, role=Role.STUDY_ADMIN)
    save_study_readme(study=study, author=other, text="Bob's first", based_on_id=None)

    with pytest.raises(StudyReadmeError, match="bob saved a newer version"):
        save_study_readme(study=study, author=admin, text="Ada's first", based_on_id=None)
    assert newest_readme(study).text == "Bob's first"
    assert StudyReadme.objects.count() == 1


def test_save_without_based_on_conflicts(study, admin):
    save_study_readme(study=study, author=admin, text="Current")

    with pytest.raises(StudyReadmeError, match="saved a newer version"):
        save_study_readme(study=study, author=admin, text="Current")
    assert StudyReadme.objects.count() == 1


def test_stale_message_names_time_zone(study, admin, settings):
    settings.TIME_ZONE = "America/Toronto"
    first = save_study_readme(study=study, author=admin, text="First")
    StudyReadme.objects.filter(pk=first.pk).update(
        created_at=datetime(2026, 1, 15, 17, 30, tzinfo=UTC)
    )

    with pytest.raises(StudyReadmeError) as raised:
        save_study_readme(study=study, author=admin, text="Second")

    assert "at 2026-01-15 12:30 EST while you were editing" in str(raised.value)
