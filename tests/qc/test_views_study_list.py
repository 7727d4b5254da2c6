import pytest
from django.urls import reverse

from tests.qc.scenarios import study_with_timepoints
from tests.studies.factories import StudyFactory

pytestmark = pytest.mark.django_db

URL = reverse("qc:study_list")


def test_study_list_shows_counts(reviewer_client, reviewer):
    # Three human timepoints (the second signed off) and one phantom that is not signed off.
    study_with_timepoints(3, reviewer)
    response = reviewer_client.get(URL)

    assert response.status_code == 200
    study = response.context["page"].object_list[0]
    assert study.nickname == "SPINS"
    assert study.timepoint_count == 4
    assert study.needs_review_count == 2
    assert 'data-needs-review="2"' in response.text


def test_study_list_orders_by_nickname(reviewer_client):
    for nickname in ("ZETA", "ALPHA", "MID"):
        StudyFactory(nickname=nickname)
    response = reviewer_client.get(URL)

    nicknames = [study.nickname for study in response.context["page"].object_list]
    assert nicknames == ["ALPHA", "MID", "ZETA"]


def test_study_list_counts_study_without_timepoints(reviewer_client):
    StudyFactory(nickname="EMPTY")
    response = reviewer_client.get(URL)

    study = response.context["page"].object_list[0]
    assert study.timepoint_count == 0
    assert study.needs_review_count == 0


def test_study_list_empty(reviewer_client):
    response = reviewer_client.get(URL)

    assert response.status_code == 200
    assert "No studies to show" in response.text


@pytest.mark.parametrize("count", [1, 20])
def test_study_list_query_count(reviewer_client, reviewer, django_assert_num_queries, count):
    for index in range(count):
        study_with_timepoints(1, reviewer, nickname=f"STUDY{index:02d}", code=f"ST{index:02d}")

    # 1 session, 2 user, 3 paginator count, 4 studies with both counts as subqueries.
    with django_assert_num_queries(4):
        response = reviewer_client.get(URL)

    assert response.status_code == 200
    assert len(response.context["page"].object_list) == count
