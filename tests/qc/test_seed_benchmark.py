from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from qc import benchmark_data
from qc.models import QCEvent, QCState, ScanReview, SessionSignOff
from studies.models import ExpectedScan, Scan, Session, Study, StudySite, Timepoint

pytestmark = pytest.mark.django_db


def run(*args):
    out = StringIO()
    call_command("seed_benchmark", *args, stdout=out)
    return out.getvalue()


def delete_benchmark_rows():
    # Children first: QC history is protected from cascading deletes on purpose.
    QCEvent.objects.all().delete()
    ScanReview.objects.all().delete()
    SessionSignOff.objects.all().delete()
    Scan.objects.all().delete()
    Session.objects.all().delete()
    Timepoint.objects.all().delete()
    ExpectedScan.objects.all().delete()
    StudySite.objects.all().delete()
    Study.objects.all().delete()


def test_small_profile_shape():
    output = run("small")

    assert Timepoint.objects.count() == 200
    assert Session.objects.count() == 200
    assert Scan.objects.count() == 2000
    assert ExpectedScan.objects.count() == 4 * 7
    reviewed = ScanReview.objects.count()
    assert 1000 < reviewed < 1400
    flagged = ScanReview.objects.filter(state=QCState.FLAGGED).count()
    assert 0.08 < flagged / reviewed < 0.22
    assert 80 < SessionSignOff.objects.count() < 160
    stored = dict(Scan.objects.values_list("name", "review_state"))
    reviewed_states = dict(ScanReview.objects.values_list("scan__name", "state"))
    assert stored == {name: reviewed_states.get(name) for name in stored}
    assert "Seeded small: 1 studies, 200 timepoints, 200 sessions, 2000 scans" in output


def test_same_seed_same_rows():
    run("small")
    first = list(ScanReview.objects.order_by("scan__name").values_list("scan__name", "state"))
    delete_benchmark_rows()

    run("small")
    second = list(ScanReview.objects.order_by("scan__name").values_list("scan__name", "state"))

    assert first == second


def test_second_run_refused():
    run("small")
    with pytest.raises(CommandError, match="BENCH already exists"):
        run("small")
    assert Timepoint.objects.count() == 200


def test_profiles_give_each_study_its_own_code():
    for profile, shapes in benchmark_data.PROFILES.items():
        codes = [shape.code for shape in shapes]
        assert len(set(codes)) == len(codes), profile


def test_lab_profile_shape():
    shapes = benchmark_data.PROFILES["lab"]

    assert len(shapes) == 30
    assert 14000 <= sum(shape.timepoints for shape in shapes) <= 16000
