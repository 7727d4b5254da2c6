"""Import throughput: a synthetic datman archive on disk, imported three times.

The archive contains one study, BENCHIMP (study code BIM01), at the demo archive's two sites. Each
session has ten series of the demo protocols (two T1, four RST, four DTI60-1000), with a tiny
NIfTI file and a dcm2niix-style sidecar each. The runs are: a new archive, an unchanged re-run,
and a re-run after 1% of the sidecars were rewritten with a new value.
"""

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.db import connection

from studies import datman_ids, demo

STUDY_NICKNAME = "BENCHIMP"
STUDY_CODE = "BIM01"
SERIES = (
    ("T1", 2),
    ("T1", 3),
    *(("RST", n) for n in range(4, 8)),
    *(("DTI60-1000", n) for n in range(8, 12)),
)
CHANGED_SHARE = 0.01


@dataclass
class ImportRun:
    """One timed import: what it was, scans seen, seconds and SQL queries."""

    label: str
    scans: int
    seconds: float
    queries: int
    summary: str

    @property
    def scans_per_second(self):
        return self.scans / self.seconds

    @property
    def queries_per_1000_scans(self):
        return self.queries * 1000 / self.scans


def build_archive(root, timepoints):
    """Write `timepoints` sessions of ten series under `root`/BENCHIMP; return the sidecar paths."""
    study_root = Path(root) / STUDY_NICKNAME
    niftis = {}
    for tag in {tag for tag, _ in SERIES}:
        protocol = demo.PROTOCOLS[tag]
        niftis[tag] = demo.nifti_bytes(
            demo.synthetic_volume(protocol, np.random.default_rng(1)), protocol
        )
    sidecars = []
    for number in range(timepoints):
        site = demo.SITES[number % len(demo.SITES)]
        ident = datman_ids.parse_session_id(f"{STUDY_CODE}_{site}_{number:05d}_01_01")
        folder = study_root / "data" / "nii" / ident.timepoint_id
        folder.mkdir(parents=True, exist_ok=True)
        for position, (tag, series) in enumerate(SERIES):
            protocol = demo.PROTOCOLS[tag]
            stem = datman_ids.make_filename(ident, tag, series, protocol.series_description)
            (folder / f"{stem}.nii.gz").write_bytes(niftis[tag])
            sidecar = demo._sidecar(ident, protocol, series, position)
            path = folder / f"{stem}.json"
            path.write_text(json.dumps(sidecar, indent="\t") + "\n")
            sidecars.append(path)
    return study_root, sidecars


def change_sidecars(sidecars, share=CHANGED_SHARE):
    """Rewrite every 1/share-th sidecar with a new AcquisitionTime; return how many changed."""
    step = max(1, round(1 / share))
    changed = sidecars[::step]
    for path in changed:
        sidecar = json.loads(path.read_text())
        sidecar["AcquisitionTime"] = "23:59:59.000000"
        path.write_text(json.dumps(sidecar, indent="\t") + "\n")
    return len(changed)


def prepare_study():
    """Create the BENCHIMP study with its sites and expected scans, deleting an earlier import."""
    from qc.models import HeaderDiff
    from studies.models import (
        ExpectedScan,
        Scan,
        Scantype,
        Session,
        Site,
        Study,
        StudySite,
        Timepoint,
    )

    study = Study.objects.filter(nickname=STUDY_NICKNAME).first()
    if study is not None:
        HeaderDiff.objects.filter(scan__session__timepoint__study=study).delete()
        Scan.objects.filter(session__timepoint__study=study).delete()
        Session.objects.filter(timepoint__study=study).delete()
        Timepoint.objects.filter(study=study).delete()
    else:
        study = Study.objects.create(nickname=STUDY_NICKNAME, name="Import benchmark")
    for site_name in demo.SITES:
        site, _ = Site.objects.get_or_create(name=site_name)
        study_site, _ = StudySite.objects.get_or_create(
            study=study, site=site, defaults={"code": STUDY_CODE}
        )
        for tag in {tag for tag, _ in SERIES}:
            scantype, _ = Scantype.objects.get_or_create(
                tag=tag, defaults={"qc_type": demo.PROTOCOLS[tag].qc_type}
            )
            count = sum(1 for series_tag, _ in SERIES if series_tag == tag)
            ExpectedScan.objects.get_or_create(
                study_site=study_site, scantype=scantype, defaults={"count": count}
            )
    return study


class QueryCounter:
    """A database execute wrapper that counts statements.

    CaptureQueriesContext cannot count an import, because the query log keeps only the last
    9,000 statements.
    """

    def __init__(self):
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)


def timed_import(label, study, study_root, scans):
    from studies.importer import import_archive

    counter = QueryCounter()
    with connection.execute_wrapper(counter):
        started = time.perf_counter()
        result = import_archive(study, archive_root=study_root)
        seconds = time.perf_counter() - started
    if result.failed:
        raise RuntimeError(f"The {label} import reported errors: {result.summary()}")
    return ImportRun(label, scans, seconds, counter.count, result.summary())


def measure_imports(work_folder, timepoints):
    """Build the archive in `work_folder` and return the three ImportRuns."""
    study = prepare_study()
    study_root, sidecars = build_archive(work_folder, timepoints)
    scans = len(sidecars)
    runs = [timed_import("new archive", study, study_root, scans)]
    runs.append(timed_import("unchanged re-run", study, study_root, scans))
    changed = change_sidecars(sidecars)
    runs.append(timed_import(f"re-run, {changed} sidecars changed", study, study_root, scans))
    return runs
