"""Assemble datman study archives in a temporary folder for the import tests.

Sidecars, bval/bvec files and manifests are copied from the real fixtures (or written from a
dict or raw text); NIfTI files are tiny volumes written with nibabel.
"""

import json
import shutil
from pathlib import Path

import nibabel
import numpy as np


def timepoint_of(stem):
    """The timepoint folder of a datman file stem: its first four fields, also for phantoms."""
    return "_".join(stem.split("_")[:4])


def write_nifti(path, shape):
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.arange(int(np.prod(shape)), dtype=np.int16).reshape(shape)
    nibabel.save(nibabel.Nifti1Image(data, np.eye(4)), path)
    return path


def write_content(path, content):
    """Write a Path's bytes (a copy), a dict as JSON, text or bytes to `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, Path):
        shutil.copyfile(content, path)
    elif isinstance(content, dict):
        path.write_text(json.dumps(content, indent=2), encoding="utf-8")
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


class ArchiveBuilder:
    """A study archive under `root`: `data/nii/<TIMEPOINT>/` and `qc/<TIMEPOINT>/`."""

    def __init__(self, root):
        self.root = Path(root)
        (self.root / "data" / "nii").mkdir(parents=True, exist_ok=True)

    def nii_dir(self, folder):
        return self.root / "data" / "nii" / folder

    def qc_dir(self, folder):
        return self.root / "qc" / folder

    def add_scan(
        self,
        stem,
        *,
        folder=None,
        shape=(4, 4, 3),
        sidecar=None,
        bval=None,
        bvec=None,
        err=None,
        nifti=True,
        extension=".nii.gz",
        blacklisted=False,
    ):
        """Write the files of one series and return them as {extension: path}.

        `sidecar`, `bval`, `bvec` and `err` are a Path to copy, a dict (sidecar only) or text;
        None leaves the file out.
        """
        directory = self.nii_dir(folder or timepoint_of(stem))
        if blacklisted:
            directory = directory / "blacklisted"
        directory.mkdir(parents=True, exist_ok=True)
        paths = {}
        if nifti:
            paths[extension] = write_nifti(directory / f"{stem}{extension}", shape)
        for suffix, content in ((".json", sidecar), (".bval", bval), (".bvec", bvec)):
            if content is not None:
                paths[suffix] = write_content(directory / f"{stem}{suffix}", content)
        if err is not None:
            paths[".err"] = write_content(directory / f"{stem}.err", err)
        return paths

    def add_file(self, folder, name, content=b""):
        return write_content(self.nii_dir(folder) / name, content)

    def add_manifest(self, content, *, name=None, folder=None):
        """Write a QC manifest; a Path keeps its own file name unless `name` is given."""
        name = name or content.name
        folder = folder or timepoint_of(name)
        return write_content(self.qc_dir(folder) / name, content)
