"""SliceTiming repair: corrected copies outside the archive, the audit rows, the recomputed
header diff and the rejected inputs."""

import json
import math
from pathlib import Path

import pytest
from django.urls import reverse

from qc.compliance_repair import RepairError, parse_slice_timing, repair_slice_timing
from qc.compliance_services import compute_header_diffs, compute_header_diffs_for_sessions
from qc.models import (
    HeaderDiff,
    QCEvent,
    QCEventKind,
    SidecarRepair,
    SidecarRepairAction,
)
from tests.qc.compliance_factories import GoldStandardFactory
from tests.studies.factories import ScanFactory, ScantypeFactory, UserFactory

pytestmark = pytest.mark.django_db

STANDARD_TIMING = [0.0, 0.5, 1.0, 1.5]
SCAN_TIMING = [0.0, 1.0, 0.5, 1.5]


@pytest.fixture
def repair_root(settings, tmp_path):
    settings.ARCHIVE_ROOT = tmp_path / "archive"
    settings.SIDECAR_REPAIR_ROOT = str(tmp_path / "repaired")
    return tmp_path / "repaired"


def deviating_scan(*, scan_tr=2.0, standard_tr=2.0, standard_timing=STANDARD_TIMING):
    """A RST scan whose SliceTiming differs from its site's gold standard, compared."""
    rst = ScantypeFactory(tag="RST", qc_type="fmri")
    sidecar = {"RepetitionTime": scan_tr, "SliceTiming": SCAN_TIMING, "EchoTime": 0.03}
    scan = ScanFactory(
        scantype=rst,
        sidecar=sidecar,
        sidecar_path="data/nii/SPN01_CMH_0001_01/SPN01_CMH_0001_01_01_RST_04_Rest.json",
    )
    study_site = scan.session.timepoint.study_site
    standard = {"RepetitionTime": standard_tr, "SliceTiming": standard_timing, "EchoTime": 0.03}
    GoldStandardFactory(
        study=study_site.study, site=study_site.site, scantype=rst, sidecar=standard
    )
    compute_header_diffs(study_site.study)
    return scan


def current_diff(scan):
    return HeaderDiff.objects.current().get(scan=scan)


def test_replace_with_standard(repair_root):
    scan = deviating_scan()
    reviewer = UserFactory()
    original = dict(scan.sidecar)

    repair = repair_slice_timing(scan, reviewer=reviewer, action=SidecarRepairAction.STANDARD)

    written = repair_root / scan.session.timepoint.study.nickname / scan.sidecar_path
    assert repair.path == str(written)
    assert json.loads(written.read_text())["SliceTiming"] == STANDARD_TIMING
    assert json.loads(written.read_text())["EchoTime"] == 0.03
    assert repair.old_value == SCAN_TIMING
    assert repair.new_value == STANDARD_TIMING
    assert repair.reviewer == reviewer
    assert repair.gold_standard is not None
    scan.refresh_from_db()
    assert scan.sidecar == original
    assert current_diff(scan).status == "match"
    event = QCEvent.objects.get(kind=QCEventKind.SIDECAR_REPAIRED)
    assert event.scan == scan
    assert event.details["old"] == SCAN_TIMING


def test_edit_values(repair_root):
    scan = deviating_scan()

    repair = repair_slice_timing(
        scan,
        reviewer=UserFactory(),
        action=SidecarRepairAction.EDITED,
        values_text="[0, 0.25, 0.75, 1.25]",
    )

    assert repair.new_value == [0.0, 0.25, 0.75, 1.25]
    assert json.loads(Path(repair.path).read_text())["SliceTiming"] == [0.0, 0.25, 0.75, 1.25]
    assert current_diff(scan).deviating_fields == ["SliceTiming"]


def test_remove_field(repair_root):
    scan = deviating_scan()

    repair = repair_slice_timing(scan, reviewer=UserFactory(), action=SidecarRepairAction.REMOVED)

    assert repair.new_value is None
    assert "SliceTiming" not in json.loads(Path(repair.path).read_text())
    assert current_diff(scan).deviating_fields == ["SliceTiming"]
    assert current_diff(scan).diff["missing"] == ["SliceTiming"]


def test_second_repair_keeps_first(repair_root):
    scan = deviating_scan()
    reviewer = UserFactory()
    repair_slice_timing(
        scan, reviewer=reviewer, action=SidecarRepairAction.EDITED, values_text="0 1 1 1"
    )

    second = repair_slice_timing(scan, reviewer=reviewer, action=SidecarRepairAction.STANDARD)

    assert SidecarRepair.objects.count() == 2
    assert second.old_value == [0.0, 1.0, 1.0, 1.0]
    assert second.original_value == SCAN_TIMING
    assert current_diff(scan).status == "match"


def test_repair_lapses_after_new_conversion(repair_root):
    scan = deviating_scan()
    repair_slice_timing(scan, reviewer=UserFactory(), action=SidecarRepairAction.STANDARD)

    scan.sidecar = {**scan.sidecar, "SliceTiming": [0.0, 1.5, 1.0, 0.5]}
    scan.save()
    compute_header_diffs_for_sessions(scan.session.timepoint.study, [scan.session], force=True)

    assert current_diff(scan).deviating_fields == ["SliceTiming"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0, 0.5, abc, 1.5", "Slice time 3 is 'abc', not a number"),
        ("0, 0.5, 1.0, 2.5", "Slice time 4 is 2.5; each must be from 0 to the repetition time"),
        ("-0.1, 0.5, 1.0, 1.5", "Slice time 1 is -0.1"),
        ("0, 0.5, nan, 1.5", "Slice time 3 is 'nan', not a number"),
        ("0, 0.5, 1.0", "You entered 3 slice times; the scan has 4 slices"),
        ("", "Enter 4 slice times in seconds"),
        ("[]", "Enter 4 slice times in seconds"),
    ],
)
def test_edit_rejects_bad_values(repair_root, text, message):
    scan = deviating_scan()

    with pytest.raises(RepairError) as error:
        repair_slice_timing(
            scan, reviewer=UserFactory(), action=SidecarRepairAction.EDITED, values_text=text
        )

    assert message in str(error.value)
    assert not SidecarRepair.objects.exists()
    assert not repair_root.exists()


def test_standard_rejected_when_tr_differs(repair_root):
    scan = deviating_scan(scan_tr=2.0, standard_tr=1.5)

    with pytest.raises(RepairError) as error:
        repair_slice_timing(scan, reviewer=UserFactory(), action=SidecarRepairAction.STANDARD)

    assert "RepetitionTime of scan" in str(error.value)
    assert "edit the values instead" in str(error.value)
    assert not SidecarRepair.objects.exists()


def test_standard_rejected_when_lengths_differ(repair_root):
    scan = deviating_scan(standard_timing=[0.0, 0.4, 0.8, 1.2, 1.6])

    with pytest.raises(RepairError) as error:
        repair_slice_timing(scan, reviewer=UserFactory(), action=SidecarRepairAction.STANDARD)

    assert "The gold standard has 5 slice times and scan" in str(error.value)


def test_scan_without_standard_rejected(repair_root):
    scan = ScanFactory(sidecar={"RepetitionTime": 2.0, "SliceTiming": SCAN_TIMING})
    compute_header_diffs(scan.session.timepoint.study)

    with pytest.raises(RepairError) as error:
        repair_slice_timing(scan, reviewer=UserFactory(), action=SidecarRepairAction.REMOVED)

    assert "has no gold standard for its tag" in str(error.value)


def test_matching_slice_timing_rejected(repair_root):
    scan = deviating_scan(standard_timing=SCAN_TIMING)

    with pytest.raises(RepairError) as error:
        repair_slice_timing(scan, reviewer=UserFactory(), action=SidecarRepairAction.REMOVED)

    assert "does not deviate from its gold standard" in str(error.value)


def test_repair_off_without_root(settings):
    settings.SIDECAR_REPAIR_ROOT = ""
    scan = deviating_scan()

    with pytest.raises(RepairError) as error:
        repair_slice_timing(scan, reviewer=UserFactory(), action=SidecarRepairAction.REMOVED)

    assert "Set SIDECAR_REPAIR_ROOT" in str(error.value)


@pytest.mark.parametrize("inside", ["", "repairs"])
def test_root_in_archive_rejected(settings, tmp_path, inside):
    # SIDECAR_REPAIR_ROOT is ARCHIVE_ROOT itself, or a folder inside a study's archive.
    settings.ARCHIVE_ROOT = tmp_path / "archive"
    scan = deviating_scan()
    study_root = scan.session.timepoint.study.archive_root
    settings.SIDECAR_REPAIR_ROOT = str(study_root / inside if inside else tmp_path / "archive")
    original = study_root / scan.sidecar_path
    original.parent.mkdir(parents=True)
    original.write_text(json.dumps(scan.sidecar))
    archive_text = original.read_text()

    with pytest.raises(RepairError) as error:
        repair_slice_timing(scan, reviewer=UserFactory(), action=SidecarRepairAction.REMOVED)

    assert original.read_text() == archive_text
    assert "inside the archive of study" in str(error.value)
    assert not SidecarRepair.objects.exists()
    assert sorted(path.name for path in study_root.iterdir()) == ["data"]


def test_parse_accepts_spaces_and_brackets():
    assert parse_slice_timing("[0 0.5,1.0 ,  1.5]", repetition_time=2, count=4) == STANDARD_TIMING


def test_parse_rejects_missing_tr():
    with pytest.raises(RepairError) as error:
        parse_slice_timing("0, 1", repetition_time=None, count=2)

    assert "RepetitionTime is None, not a number" in str(error.value)


@pytest.mark.parametrize(
    "token", ["1_0", "0_1", "\u0661", "\u0660.\u0665", "inf", "nan", "+1", "0x1"]
)
def test_parse_rejects_non_plain_number(token):
    with pytest.raises(RepairError) as error:
        parse_slice_timing(f"0, {token}", repetition_time=2, count=2)

    message = str(error.value)
    assert f"Slice time 2 is {token!r}, not a number" in message
    assert "digits 0-9 and a dot" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0, 2.5e-1, .5, 1.", [0.0, 0.25, 0.5, 1.0]), ("0 5E-1 1 1.5", STANDARD_TIMING)],
)
def test_parse_accepts_plain_numbers(text, expected):
    assert parse_slice_timing(text, repetition_time=2, count=4) == expected


@pytest.mark.parametrize("token", ["-0", "-0.0", "-0e5"])
def test_parse_stores_negative_zero_as_zero(token):
    values = parse_slice_timing(f"{token}, 1", repetition_time=2, count=2)

    assert values == [0.0, 1.0]
    assert math.copysign(1, values[0]) == 1
    assert json.dumps(values) == "[0.0, 1.0]"


@pytest.mark.parametrize("token", ["-0.5", "-1e-3"])
def test_parse_negative_time_out_of_range(token):
    with pytest.raises(RepairError) as error:
        parse_slice_timing(f"{token}, 1", repetition_time=2, count=2)

    assert f"Slice time 1 is {token}; each must be from 0 to the repetition time" in str(
        error.value
    )


# --- The scan page and its POST action --------------------------------------------------------


def repair_url(scan):
    return reverse("qc:compliance:repair_sidecar", args=[scan.name])


def test_scan_page_offers_repairs(reviewer_client, repair_root):
    scan = deviating_scan()

    text = reviewer_client.get(reverse("qc:scan_detail", args=[scan.name])).content.decode()

    assert f'action="{repair_url(scan)}"' in text
    assert "Use the standard's timing" in text
    assert "0.0, 1.0, 0.5, 1.5" in text


def test_scan_page_says_repair_off(reviewer_client, settings):
    settings.SIDECAR_REPAIR_ROOT = ""
    scan = deviating_scan()

    text = reviewer_client.get(reverse("qc:scan_detail", args=[scan.name])).content.decode()

    assert 'data-status="repair-off"' in text
    assert "SIDECAR_REPAIR_ROOT is not set" in text
    assert repair_url(scan) not in text


def test_scan_page_disables_standard_on_tr_mismatch(reviewer_client, repair_root):
    scan = deviating_scan(standard_tr=1.5)

    text = reviewer_client.get(reverse("qc:scan_detail", args=[scan.name])).content.decode()

    assert 'disabled aria-describedby="standard-problem"' in text


def test_post_repair_redirects_with_message(reviewer_client, repair_root):
    scan = deviating_scan()

    response = reviewer_client.post(repair_url(scan), {"action": "standard"}, follow=True)

    assert response.redirect_chain[-1][0].endswith("#header-check")
    assert "the archive&#x27;s file is unchanged" in response.content.decode()
    assert 'data-repair="standard"' in response.content.decode()


def test_post_bad_values_keeps_input(reviewer_client, repair_root):
    scan = deviating_scan()

    response = reviewer_client.post(
        repair_url(scan), {"action": "edited", "values": "0, 0.5, x, 1"}, follow=True
    )

    text = response.content.decode()
    assert "Slice time 3 is &#x27;x&#x27;, not a number" in text
    assert "You entered: 0, 0.5, x, 1" in text
    assert not SidecarRepair.objects.exists()


def test_post_unknown_action_rejected(reviewer_client, repair_root):
    scan = deviating_scan()

    response = reviewer_client.post(repair_url(scan), {"action": "rewrite"}, follow=True)

    assert "rewrite is not a repair" in response.content.decode()
    assert not SidecarRepair.objects.exists()


@pytest.mark.parametrize("count", [1, 20])
def test_scan_page_query_count_with_repairs(
    reviewer_client, repair_root, django_assert_num_queries, count
):
    scan = deviating_scan()
    for index in range(count):
        values = "0 1 1 1" if index % 2 else "0 1 0.5 1"
        repair_slice_timing(
            scan, reviewer=UserFactory(), action=SidecarRepairAction.EDITED, values_text=values
        )

    # 1 session, 2 user, 3 scan, 4 current header diff, 5 deviation resolutions, 6 names of
    # the timepoint's scans (previous and next links), 7 review history, 8 history (one
    # union), 9 sidecar repairs with reviewers, 10 pipeline pages.
    with django_assert_num_queries(10):
        response = reviewer_client.get(reverse("qc:scan_detail", args=[scan.name]))

    assert response.content.decode().count("data-repair=") == count
