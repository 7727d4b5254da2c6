"""`sync_config` fills the XNAT credentials file from datman's XnatCredentials."""

import pytest
from django.core.management import CommandError

from integrations.models import XnatSiteSettings
from tests.studies.test_sync_config import STUDY_CONFIG, demo_config, run_sync, write_study

pytestmark = pytest.mark.django_db
__all__ = ["demo_config"]  # the fixture, imported for the tests below


def write_credentials_study(main_config, site_keys="", create_file=True):
    """The demo study with XnatCredentials at study level, and the file in its metadata."""
    text = STUDY_CONFIG.replace("ProjectDir: DEMO\n", "ProjectDir: DEMO\nXnatCredentials: xnat\n")
    write_study(main_config, text + site_keys)
    metadata = main_config.parent / "archive" / "DEMO" / "metadata"
    metadata.mkdir(parents=True, exist_ok=True)
    if create_file:
        (metadata / "xnat").write_text("qcdash\nsecret\n")
    return metadata / "xnat"


def test_credentials_file_synced(demo_config):
    path = write_credentials_study(demo_config)

    output = run_sync(demo_config)

    rows = XnatSiteSettings.objects.select_related("study_site__site").order_by(
        "study_site__site__name"
    )
    assert [row.study_site.site.name for row in rows] == ["CMH", "UTO"]
    assert all(row.credentials_file == str(path) for row in rows)
    assert all(row.push_enabled for row in rows)
    assert "created XNAT settings of DEMO/CMH" in output
    assert "secret" not in output


def test_site_without_archive_warned(demo_config):
    write_credentials_study(demo_config)

    output = run_sync(demo_config)

    # UTO has no XnatArchive in the demo study, so its decisions are not pushed.
    assert "site UTO of study DEMO sets XnatCredentials but not both" in output


def test_missing_credentials_file_warned(demo_config):
    path = write_credentials_study(demo_config, create_file=False)

    output = run_sync(demo_config)

    assert f"XNAT credentials file {path} of site CMH of study DEMO not found" in output
    assert XnatSiteSettings.objects.count() == 2


def test_rerun_changes_nothing(demo_config):
    write_credentials_study(demo_config)
    run_sync(demo_config)

    output = run_sync(demo_config)

    assert "XNAT settings" not in output


def test_admin_variable_kept(demo_config):
    write_credentials_study(demo_config)
    run_sync(demo_config)
    XnatSiteSettings.objects.update(credentials_variable="XNAT_CREDENTIALS_CMH")

    run_sync(demo_config)

    assert set(XnatSiteSettings.objects.values_list("credentials_variable", flat=True)) == {
        "XNAT_CREDENTIALS_CMH"
    }


def test_without_credentials_no_rows(demo_config):
    run_sync(demo_config)

    assert XnatSiteSettings.objects.count() == 0


def test_absolute_credentials_path_rejected(demo_config):
    text = STUDY_CONFIG.replace(
        "ProjectDir: DEMO\n", "ProjectDir: DEMO\nXnatCredentials: /etc/passwd\n"
    )
    write_study(demo_config, text)

    with pytest.raises(CommandError, match="must be a file name in the study's metadata"):
        run_sync(demo_config)

    assert XnatSiteSettings.objects.count() == 0
