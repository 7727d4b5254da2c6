"""import_archive: tech notes from data/RESOURCES/ and task files from task/, and re-runs."""

import os

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from studies import importer
from studies.models import Session, StudySite, TaskFile
from studies.session_files import tech_notes_score
from tests.studies.archive_builder import ArchiveBuilder, write_content
from tests.studies.factories import (
    ExpectedScanFactory,
    ScantypeFactory,
    SiteFactory,
    StudyFactory,
    StudySiteFactory,
)

pytestmark = pytest.mark.django_db

SESSION = "STUDY_SITE_0001_01_01"
REPEAT = "STUDY_SITE_0001_01_02"
T1_STEM = f"{SESSION}_T1_02_SagT1"
REPEAT_STEM = f"{REPEAT}_T1_02_SagT1"
PHANTOM_STEM = "STUDY_SITE_PHA_FBN0001_T1_02_SagT1"


@pytest.fixture
def study(tmp_path):
    study = StudyFactory(nickname="STUDY", archive_path=str(tmp_path / "STUDY"))
    study_site = StudySiteFactory(
        study=study, site=SiteFactory(name="SITE"), code="STUDY", uses_tech_notes=True
    )
    ExpectedScanFactory(
        study_site=study_site, scantype=ScantypeFactory(tag="T1"), count=1, phantom_count=1
    )
    return study


@pytest.fixture
def archive(study):
    archive = ArchiveBuilder(study.archive_root)
    archive.add_scan(T1_STEM, sidecar={"SeriesNumber": 2})
    archive.add_scan(REPEAT_STEM, sidecar={"SeriesNumber": 2})
    return archive


def resources(study, session_id, relative, content=b"%PDF-1.4\n"):
    return write_content(study.archive_root / "data" / "RESOURCES" / session_id / relative, content)


def task_file(study, session_id, name, content=b"trial,onset\n1,0.5\n"):
    return write_content(study.archive_root / "task" / session_id / name, content)


def session(number=1):
    return Session.objects.get(timepoint__name="STUDY_SITE_0001_01", number=number)


@pytest.mark.parametrize(
    ("name", "score"),
    [
        ("TechNotes.pdf", 6),
        ("scan_tech.pdf", 4),
        ("notes.txt", 2),
        ("scan.pdf", 1),
        ("tech_notes.png", 5),
        ("behav_log.txt", 0),
        ("tech_notes.edat2", 0),
    ],
)
def test_tech_notes_score(name, score):
    assert tech_notes_score(name) == score


def test_import_records_best_tech_notes(study, archive):
    resources(study, SESSION, "MR/scan.pdf")
    resources(study, SESSION, "notes/Tech_Notes.pdf", b"%PDF-1.4\n% the tech notes\n")
    resources(study, SESSION, "behav/behav_log.txt", b"log\n")

    result = importer.import_archive(study)

    first = session(1)
    assert first.tech_notes_path == f"data/RESOURCES/{SESSION}/notes/Tech_Notes.pdf"
    assert first.tech_notes_size == len(b"%PDF-1.4\n% the tech notes\n")
    assert first.tech_notes_modified_at is not None
    assert session(2).tech_notes_path == ""
    assert result.counts["tech_notes_updated"] == 1
    assert "tech notes of 1 session set" in result.summary()


def test_import_skips_tech_notes_when_switch_off(study, archive):
    StudySite.objects.filter(study=study).update(uses_tech_notes=False)
    resources(study, SESSION, "Tech_Notes.pdf")

    importer.import_archive(study)

    assert session(1).tech_notes_path == ""


def test_import_ignores_files_scoring_zero(study, archive):
    resources(study, SESSION, "behav_log.txt", b"log\n")

    importer.import_archive(study)

    assert session(1).tech_notes_path == ""


def test_import_clears_removed_tech_notes(study, archive):
    notes = resources(study, SESSION, "Tech_Notes.pdf")
    importer.import_archive(study)
    notes.unlink()

    result = importer.import_archive(study)

    first = session(1)
    assert first.tech_notes_path == ""
    assert first.tech_notes_size is None
    assert result.counts["tech_notes_updated"] == 1


def test_import_records_task_files(study, archive):
    task_file(study, SESSION, "STUDY_SITE_0001_01_01_behav.csv")
    task_file(study, SESSION, "run1.edat2", b"x" * 1234)
    task_file(study, SESSION, ".DS_Store")
    task_file(study, REPEAT, "run2.edat2")

    result = importer.import_archive(study)

    rows = list(TaskFile.objects.filter(session=session(1)).order_by("path"))
    assert [row.path for row in rows] == [
        f"task/{SESSION}/STUDY_SITE_0001_01_01_behav.csv",
        f"task/{SESSION}/run1.edat2",
    ]
    assert rows[1].name == "run1.edat2"
    assert rows[1].size == 1234
    assert rows[1].modified_at is not None
    assert TaskFile.objects.filter(session=session(2)).count() == 1
    assert result.counts["task_files_created"] == 3
    assert "task files: 3 created" in result.summary()


def test_import_task_files_follow_symlinks(study, archive):
    target = resources(study, SESSION, "behav/run1.edat2", b"y" * 50)
    link = study.archive_root / "task" / SESSION / "run1.edat2"
    link.parent.mkdir(parents=True)
    os.symlink(target, link)

    importer.import_archive(study)

    assert TaskFile.objects.get().size == 50


def test_import_reports_broken_task_link(study, archive):
    link = study.archive_root / "task" / SESSION / "gone.edat2"
    link.parent.mkdir(parents=True)
    os.symlink(study.archive_root / "missing.edat2", link)

    result = importer.import_archive(study)

    assert not TaskFile.objects.exists()
    warnings = result.issues_at(importer.IssueLevel.WARNING)
    assert [issue.path for issue in warnings] == [link]
    assert "cannot be read" in warnings[0].message


def test_import_updates_and_removes_task_files(study, archive):
    kept = task_file(study, SESSION, "run1.edat2", b"short")
    removed = task_file(study, SESSION, "run2.edat2")
    importer.import_archive(study)
    kept.write_bytes(b"a longer file")
    removed.unlink()

    result = importer.import_archive(study)

    assert TaskFile.objects.get().size == len(b"a longer file")
    assert result.counts["task_files_updated"] == 1
    assert result.counts["task_files_removed"] == 1
    assert result.changed


def test_import_phantom_gets_no_tech_notes(study, archive):
    archive.add_scan(PHANTOM_STEM, sidecar={"SeriesNumber": 2})
    resources(study, "STUDY_SITE_PHA_FBN0001", "Tech_Notes.pdf")
    task_file(study, "STUDY_SITE_PHA_FBN0001", "phantom.csv")

    importer.import_archive(study)

    phantom = Session.objects.get(timepoint__name="STUDY_SITE_PHA_FBN0001")
    assert phantom.tech_notes_path == ""
    assert phantom.task_files.count() == 1


def test_second_import_writes_nothing(study, archive):
    resources(study, SESSION, "Tech_Notes.pdf")
    task_file(study, SESSION, "run1.edat2")
    importer.import_archive(study)

    with CaptureQueriesContext(connection) as queries:
        result = importer.import_archive(study)

    writes = [
        query["sql"]
        for query in queries.captured_queries
        if query["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))
    ]
    assert writes == []
    assert not result.changed
    assert "task files" not in result.summary()
