"""Selector for the scan page's volume viewer: the NIfTI file, or the reason there is none."""

from dataclasses import dataclass

from django.urls import reverse

from studies.file_serving import archive_file_path

# File name endings NiiVue reads as NIfTI-1 or NIfTI-2, compared case-insensitively.
NIFTI_SUFFIXES = (".nii", ".nii.gz")


@dataclass(frozen=True)
class ScanVolume:
    """The NIfTI file the viewer loads (`url` set), or a reason it cannot (`problem` set)."""

    relative_path: str = ""
    url: str = ""
    problem: str = ""


def scan_volume(scan, *, source_visible):
    """Find the scan's NIfTI file in its study archive and return the viewer's ScanVolume.

    A linked scan without a file of its own shows its source's file, when the user can see the
    source. Checks the file system but runs no query: the page's selector preloads the source
    and the studies.
    """
    owner = scan
    if not scan.nifti_path and scan.source_id is not None and source_visible:
        owner = scan.source
    relative_path = owner.nifti_path.lstrip("/")
    study = owner.session.timepoint.study

    if not relative_path:
        return ScanVolume(
            problem=(
                f"No NIfTI file is recorded for {scan.name}, so there is no volume to show. "
                f"Import the session again once datman has converted the series."
            )
        )
    if not relative_path.lower().endswith(NIFTI_SUFFIXES):
        return ScanVolume(
            relative_path=relative_path,
            problem=(
                f"{relative_path} is not a NIfTI file (.nii or .nii.gz), so the viewer cannot "
                f"open it. Review the QC images instead."
            ),
        )
    if archive_file_path(study, relative_path) is None:
        return ScanVolume(
            relative_path=relative_path,
            problem=(
                f"The NIfTI file {relative_path} is missing from the {study.nickname} archive. "
                f"Check that the file exists, then import the session again if it moved."
            ),
        )
    url = reverse(
        "studies:archive_file",
        kwargs={"study": study.nickname, "relative_path": relative_path},
    )
    return ScanVolume(relative_path=relative_path, url=url)
