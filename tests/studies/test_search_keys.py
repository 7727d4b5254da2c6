"""The stored search keys of timepoints, sessions and scans (studies/search_keys.py)."""

import importlib

import pytest
from django.apps import apps

from studies.models import Scan, Session, Timepoint
from studies.search_keys import search_key, session_search_key
from tests.studies.factories import (
    PhantomTimepointFactory,
    ScanFactory,
    ScantypeFactory,
    SessionFactory,
    TimepointFactory,
)

pytestmark = pytest.mark.django_db

fill_migration = importlib.import_module("studies.migrations.0010_search_keys")


def stored_key(model, pk):
    return model.all_objects.values_list("search_key", flat=True).get(pk=pk)


def test_search_key_drops_separators_and_case():
    assert search_key("spn01_cmh-0001 01") == "SPN01CMH000101"


def test_session_search_key_pads_number():
    assert session_search_key("SPN01_CMH_0001_01", 2) == "SPN01CMH00010102"
    assert session_search_key("SPN01_CMH_0001_01", 123) == "SPN01CMH000101123"


def test_timepoint_key_follows_name():
    timepoint = TimepointFactory(name="SPN01_CMH_0001_01")

    assert stored_key(Timepoint, timepoint.pk) == "SPN01CMH000101"

    Timepoint.all_objects.filter(pk=timepoint.pk).update(name="SPN01-ZHH-0002-01")

    assert stored_key(Timepoint, timepoint.pk) == "SPN01ZHH000201"


def test_scan_key_is_set_by_bulk_create():
    session = SessionFactory(timepoint=TimepointFactory(name="SPN01_CMH_0001_01"))
    template = ScanFactory.build(
        session=session, scantype=ScantypeFactory(tag="T1"), name="SPN01_CMH_0001_01_01_T1_02"
    )

    (scan,) = Scan.all_objects.bulk_create([template])

    assert stored_key(Scan, scan.pk) == "SPN01CMH00010101T102"


def test_session_key_is_set_on_create():
    session = SessionFactory(timepoint=TimepointFactory(name="SPN01_CMH_0001_01"), number=2)

    assert stored_key(Session, session.pk) == "SPN01CMH00010102"


def test_phantom_session_key_has_number():
    session = SessionFactory(timepoint=PhantomTimepointFactory(name="SPN01_CMH_PHA_FBN0001"))

    assert session.name == "SPN01_CMH_PHA_FBN0001"
    assert stored_key(Session, session.pk) == "SPN01CMHPHAFBN000101"


def test_session_key_follows_number_in_update_fields():
    session = SessionFactory(timepoint=TimepointFactory(name="SPN01_CMH_0001_01"))

    session.number = 3
    session.save(update_fields=["number"])

    assert stored_key(Session, session.pk) == "SPN01CMH00010103"


def test_session_key_follows_timepoint_in_update_fields():
    session = SessionFactory(timepoint=TimepointFactory(name="SPN01_CMH_0001_01"))

    session.timepoint = TimepointFactory(name="SPN01_CMH_0002_01")
    session.save(update_fields=["timepoint"])

    assert stored_key(Session, session.pk) == "SPN01CMH00020101"


def test_session_key_is_set_by_bulk_create():
    timepoint = TimepointFactory(name="SPN01_CMH_0001_01")

    sessions = Session.objects.bulk_create(
        Session(timepoint=timepoint, number=number) for number in (1, 2)
    )

    assert [stored_key(Session, session.pk) for session in sessions] == [
        "SPN01CMH00010101",
        "SPN01CMH00010102",
    ]


def test_migration_fills_session_keys():
    first = SessionFactory(timepoint=TimepointFactory(name="SPN01_CMH_0001_01"), number=2)
    second = SessionFactory(timepoint=TimepointFactory(name="SPN01-ZHH-0002-01"), number=12)
    Session.all_objects.update(search_key="")

    fill_migration.fill_session_keys(apps, None)

    assert stored_key(Session, first.pk) == "SPN01CMH00010102"
    assert stored_key(Session, second.pk) == "SPN01ZHH00020112"
