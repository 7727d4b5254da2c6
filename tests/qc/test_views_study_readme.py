"""Study README: the editor page, its preview and errors, and the README on the study page."""

import pytest
from django.urls import reverse

from accounts.models import Role, StudyMembership
from studies.models import StudyReadme
from studies.readme import README_MAX_CHARS
from studies.services import save_study_readme
from tests.studies.factories import StudyFactory, UserFactory

pytestmark = pytest.mark.django_db

HOSTILE = (
    "# Scan notes\n\n"
    "<script>document.title = 'owned'</script>\n\n"
    '<img src="x" onerror="alert(1)">\n\n'
    "[bad](javascript:alert(2)) [good](https://example.org/protocol)\n\n"
    '<div style="position:fixed" onmouseover="alert(3)">raw html</div>'
)


def edit_url(nickname="SPINS"):
    return reverse("qc:study_readme_edit", args=[nickname])


def study_url(nickname="SPINS"):
    return reverse("qc:study_detail", args=[nickname])


@pytest.fixture
def study(db):
    return StudyFactory(nickname="SPINS")


@pytest.fixture
def admin(study):
    user = UserFactory(username="admin-of-spins", first_name="Ada", last_name="Admin")
    StudyMembership.objects.create(user=user, study=study, role=Role.STUDY_ADMIN)
    return user


@pytest.fixture
def admin_client(client, admin):
    client.force_login(admin)
    return client


def test_edit_page_starts_from_newest(admin_client, study, admin):
    first = save_study_readme(study=study, author=admin, text="Old")
    newest = save_study_readme(study=study, author=admin, text="New *notes*", based_on_id=first.pk)

    response = admin_client.get(edit_url())

    assert response.status_code == 200
    form = response.context["form"]
    assert form.initial == {"text": "New *notes*", "based_on": newest.pk}
    assert response.text.count("data-readme-version=") == 2


def test_save_redirects_to_study_page(admin_client, study):
    response = admin_client.post(edit_url(), {"text": "# Notes\r\n\r\nCall Ada.", "action": "save"})

    assert response.status_code == 302
    assert response.url == study_url()
    readme = StudyReadme.objects.get()
    assert readme.text == "# Notes\n\nCall Ada."
    page = admin_client.get(study_url())
    assert "<h1>Notes</h1>" in page.text
    assert "README of SPINS saved." in page.text


def test_save_unchanged_says_so(admin_client, study, admin):
    readme = save_study_readme(study=study, author=admin, text="Same")

    response = admin_client.post(
        edit_url(), {"text": "Same", "based_on": readme.pk, "action": "save"}, follow=True
    )

    assert "is unchanged; nothing saved" in response.text
    assert StudyReadme.objects.count() == 1


def test_preview_renders_without_saving(admin_client):
    response = admin_client.post(edit_url(), {"text": HOSTILE, "action": "preview"})

    assert response.status_code == 200
    preview = response.text.split('id="readme-preview"', 1)[1].split("</section>", 1)[0]
    assert "<h1>Scan notes</h1>" in preview
    assert "<script" not in preview
    assert "onerror" not in preview
    assert "javascript:" not in preview
    assert "onmouseover" not in preview
    assert 'style="' not in preview
    assert not StudyReadme.objects.exists()
    assert response.context["form"]["text"].value() == HOSTILE


def test_too_long_text_kept_with_error(admin_client):
    text = "y" * (README_MAX_CHARS + 5)

    response = admin_client.post(edit_url(), {"text": text, "action": "save"})

    assert response.status_code == 200
    assert f"{README_MAX_CHARS + 5:,} characters long" in response.text
    assert response.context["form"]["text"].value() == text
    assert not StudyReadme.objects.exists()


def test_stale_save_keeps_text_with_error(admin_client, study, admin):
    first = save_study_readme(study=study, author=admin, text="First")
    other = UserFactory(username="bob")
    StudyMembership.objects.create(user=other, study=study, role=Role.STUDY_ADMIN)
    save_study_readme(study=study, author=other, text="Bob's text", based_on_id=first.pk)

    response = admin_client.post(
        edit_url(), {"text": "My text", "based_on": first.pk, "action": "save"}
    )

    assert response.status_code == 200
    assert "bob saved a newer version" in response.text
    assert response.context["form"]["text"].value() == "My text"
    assert StudyReadme.objects.count() == 2


def test_study_page_renders_readme_inert(client, study, admin):
    save_study_readme(study=study, author=admin, text=HOSTILE)
    viewer = UserFactory(username="viewer")
    StudyMembership.objects.create(user=viewer, study=study, role=Role.VIEWER)
    client.force_login(viewer)

    response = client.get(study_url())

    block = response.text.split('id="study-readme"', 1)[1].split("</section>", 1)[0]
    assert "<h1>Scan notes</h1>" in block
    assert "<script" not in block
    assert "owned" not in block
    assert "onerror" not in block
    assert "javascript:" not in block
    assert '<a href="https://example.org/protocol" rel="noopener noreferrer">good</a>' in block
    assert "raw html" in block
    assert "position:fixed" not in block
    assert "Edit README" not in block
    assert "edited by Ada Admin" in block


def test_study_page_offers_readme_to_admin(admin_client, study):
    response = admin_client.get(study_url())

    assert 'data-link="add-readme"' in response.text
    assert 'id="study-readme"' not in response.text


def test_study_page_hides_empty_readme(client, study, admin):
    first = save_study_readme(study=study, author=admin, text="Old")
    save_study_readme(study=study, author=admin, text="", based_on_id=first.pk)
    viewer = UserFactory(username="viewer")
    StudyMembership.objects.create(user=viewer, study=study, role=Role.VIEWER)
    client.force_login(viewer)

    response = client.get(study_url())

    assert 'id="study-readme"' not in response.text
    assert "add-readme" not in response.text


def test_study_page_loads_progress_with_htmx(admin_client, study):
    response = admin_client.get(study_url())

    progress = reverse("qc:study_progress", args=["SPINS"])
    assert f'hx-get="{progress}"' in response.text
    assert 'hx-trigger="load"' in response.text


@pytest.mark.parametrize("count", [1, 20])
def test_edit_page_query_count(admin_client, study, admin, django_assert_num_queries, count):
    readme = None
    for index in range(count):
        readme = save_study_readme(
            study=study,
            author=admin,
            text=f"Version {index}",
            based_on_id=readme.pk if readme else None,
        )

    # 1 session, 2 user, 3 study, 4 newest README with author, 5 versions with authors.
    with django_assert_num_queries(5):
        response = admin_client.get(edit_url())

    assert response.text.count("data-readme-version=") == count


def test_empty_based_on_save_keeps_text_with_error(admin_client, study, admin):
    save_study_readme(study=study, author=admin, text="Current")

    response = admin_client.post(edit_url(), {"text": "Mine", "based_on": "", "action": "save"})

    assert response.status_code == 200
    assert "saved a newer version of the README" in response.text
    assert response.context["form"]["text"].value() == "Mine"
    assert list(StudyReadme.objects.values_list("text", flat=True)) == ["Current"]
