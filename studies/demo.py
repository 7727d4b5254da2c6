"""Build a small synthetic datman archive for trying qcdash without real data.

The archive has one study, DEMO (study code DEM01), scanned at two sites, CMH and UTO. Eight
timepoints hold T1, resting-state fMRI (RST) and diffusion (DTI60-1000) series as tiny NIfTI
volumes with dcm2niix-style JSON sidecars, QC images (grey-scale PNG) and their manifests. The
archive also contains the cases an import has to handle: a phantom, a repeat session, a
conversion error, sessions that lack an expected scan and one file whose name is malformed.
CMH supplies tech notes (a PDF in `data/RESOURCES/<SESSION>/`; one session lacks them), and
sessions with a resting-state scan have a behavioural task file linked into `task/<SESSION>/`,
as datman's dm_task_files links them.
Next to the study folder, `config/` contains the datman config files that sync_config reads.

Everything is generated here from fixed seeds, so two builds write identical file contents.
"""

import gzip
import json
import shutil
import struct
import zlib
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import nibabel
import numpy as np
import yaml

from studies import datman_ids

STUDY_NICKNAME = "DEMO"
STUDY_CODE = "DEM01"
SITES = ("CMH", "UTO")
CONFIG_FOLDER = "config"
MAIN_CONFIG = "main_config.yml"
STUDY_CONFIG = "demo_settings.yml"
SYSTEM_NAME = "demo"
# Written into the study folder so that --force only ever deletes a folder this module made.
MARKER_FILE = ".qcdash-demo"

SHAPE = (16, 16, 8)
PNG_SCALE = 4
MONTAGE_COLUMNS = 4
CONVERTER_VERSION = "v1.0.20211006"
# The demo sessions are dated from here on (see demo_acquisition_date).
DEMO_FIRST_SCAN_ON = date(2026, 5, 4)


@dataclass(frozen=True)
class Protocol:
    """One scan type as a site acquires it: the sidecar values and the NIfTI geometry."""

    tag: str
    qc_type: str
    series_description: str
    volumes: int
    voxel_size: tuple
    sidecar: dict


@dataclass(frozen=True)
class DemoSession:
    """A session of the demo archive: its ID, the tags acquired and series overrides."""

    session_id: str
    tags: tuple
    series: dict = field(default_factory=dict)
    conversion_error_tag: str = ""
    # Sidecar values that differ from the protocol, per tag, so header checks find deviations.
    deviations: dict = field(default_factory=dict)


@dataclass
class DemoArchive:
    """Record of the files, timepoints and sessions that `build_demo_archive` wrote."""

    root: Path
    study_root: Path
    main_config: Path
    study_config: Path
    files: list = field(default_factory=list)
    timepoints: set = field(default_factory=set)
    sessions: list = field(default_factory=list)
    nifti_files: int = 0
    qc_images: int = 0
    malformed_files: list = field(default_factory=list)
    conversion_errors: list = field(default_factory=list)
    tech_notes: int = 0
    task_files: int = 0


# Scanner and sequence values per site, loosely modelled on a GE MR750 and a Siemens Prisma.
SCANNERS = {
    "CMH": {
        "Manufacturer": "GE",
        "ManufacturersModelName": "DISCOVERY MR750",
        "SoftwareVersions": "27_LX_MR_Software_release:DV26.0_R03",
        "ImagingFrequency": 127.764,
    },
    "UTO": {
        "Manufacturer": "Siemens",
        "ManufacturersModelName": "Prisma_fit",
        "SoftwareVersions": "syngo_MR_E11",
        "ImagingFrequency": 123.251,
    },
}

FIRST_SERIES = {
    "CMH": {"T1": 2, "RST": 3, "DTI60-1000": 4},
    "UTO": {"T1": 5, "RST": 7, "DTI60-1000": 9},
}

PROTOCOLS = {
    "T1": Protocol(
        tag="T1",
        qc_type="anat",
        series_description="Sag T1 BRAVO",
        volumes=1,
        voxel_size=(1.0, 1.0, 2.0),
        sidecar={
            "MRAcquisitionType": "3D",
            "ScanningSequence": "GR",
            "SequenceVariant": "SS_SK",
            "ImageType": ["ORIGINAL", "PRIMARY", "OTHER"],
            "SliceThickness": 2.0,
            "EchoTime": 0.00312,
            "RepetitionTime": 0.00816,
            "InversionTime": 0.45,
            "FlipAngle": 12,
        },
    ),
    "RST": Protocol(
        tag="RST",
        qc_type="fmri",
        series_description="Resting State",
        volumes=6,
        voxel_size=(3.5, 3.5, 4.0),
        sidecar={
            "MRAcquisitionType": "2D",
            "ScanningSequence": "EP",
            "SequenceVariant": "SK",
            "ImageType": ["ORIGINAL", "PRIMARY", "EPI", "NONE"],
            "SliceThickness": 4.0,
            "EchoTime": 0.03,
            "RepetitionTime": 2.0,
            "FlipAngle": 60,
            "PhaseEncodingDirection": "j-",
            "TotalReadoutTime": 0.0315,
            # Interleaved ascending acquisition of 8 slices within one 2 s repetition.
            "SliceTiming": [0.0, 1.0, 0.25, 1.25, 0.5, 1.5, 0.75, 1.75],
        },
    ),
    "DTI60-1000": Protocol(
        tag="DTI60-1000",
        qc_type="dti",
        series_description="Ax DTI 60+5",
        volumes=8,
        voxel_size=(2.5, 2.5, 2.5),
        sidecar={
            "MRAcquisitionType": "2D",
            "ScanningSequence": "EP",
            "SequenceVariant": "SK_SP",
            "ImageType": ["ORIGINAL", "PRIMARY", "DIFFUSION", "NONE"],
            "SliceThickness": 2.5,
            "EchoTime": 0.0866,
            "RepetitionTime": 8.8,
            "FlipAngle": 90,
            "PhaseEncodingDirection": "j-",
            "TotalReadoutTime": 0.0585,
        },
    ),
}

# Two b=0 volumes then six diffusion directions, matching the DTI protocol's 8 volumes.
BVALUES = [0, 0, 1000, 1000, 1000, 1000, 1000, 1000]
BVECTORS = [
    (0.0, 0.0, 0.0),
    (0.0, 0.0, 0.0),
    (1.0, 0.0, 0.0),
    (0.0, 1.0, 0.0),
    (0.0, 0.0, 1.0),
    (0.7071, 0.7071, 0.0),
    (0.7071, 0.0, 0.7071),
    (0.0, 0.7071, 0.7071),
]

SESSIONS = (
    # Session 02 is a repeat visit that acquired the diffusion scan missing from session 01.
    DemoSession("DEM01_CMH_0001_01_01", ("T1", "RST")),
    DemoSession("DEM01_CMH_0001_01_02", ("DTI60-1000",), series={"DTI60-1000": 2}),
    DemoSession("DEM01_CMH_0001_02_01", ("T1", "RST", "DTI60-1000")),
    DemoSession(
        "DEM01_CMH_0002_01_01", ("T1", "RST", "DTI60-1000"), conversion_error_tag="DTI60-1000"
    ),
    DemoSession(
        "DEM01_CMH_0003_01_01", ("T1", "RST", "DTI60-1000"), deviations={"RST": {"FlipAngle": 75}}
    ),
    DemoSession("DEM01_CMH_PHA_FBN0001", ("T1", "RST")),
    DemoSession("DEM01_UTO_0001_01_01", ("T1", "RST", "DTI60-1000")),
    # UTO expects a diffusion scan, which this session lacks.
    DemoSession("DEM01_UTO_0002_01_01", ("T1", "RST")),
    DemoSession(
        "DEM01_UTO_0003_01_01", ("T1", "RST", "DTI60-1000"), deviations={"T1": {"FlipAngle": 8}}
    ),
)

# CMH sites supply tech notes; this CMH session has none, so the page shows them as missing.
TECH_NOTES_SITES = ("CMH",)
SESSION_WITHOUT_TECH_NOTES = "DEM01_CMH_0003_01_01"

# A file exported with an XNAT scan ID instead of the DICOM series number: import skips it.
MALFORMED_FILE = ("DEM01_UTO_0003_01", "DEM01_UTO_0003_01_01_T2_11-MR1_Ax-T2-FSE.nii.gz")

CONVERSION_ERROR_TEXT = """\
dcm2niiX version {version} (demo output)
Found 64 DICOM file(s)
Warning: Missing images? Expected 65 images, found 64
Convert 64 DICOM as {stem} (16x16x8x8)
"""


class DemoArchiveError(Exception):
    """The demo archive cannot be written. The message gives the reason and the fix."""


def build_demo_archive(root, *, force=False):
    """Write the demo archive and its datman config under `root` and return a `DemoArchive`.

    Raises DemoArchiveError when `root` is not empty, unless `force` is set: then the demo
    study folder (recognised by its marker file) is replaced and the config files rewritten.
    """
    root = Path(root).absolute()
    study_root = root / STUDY_NICKNAME
    _prepare_root(root, study_root, force=force)

    archive = DemoArchive(
        root=root,
        study_root=study_root,
        main_config=root / CONFIG_FOLDER / MAIN_CONFIG,
        study_config=root / CONFIG_FOLDER / STUDY_CONFIG,
    )
    _write(archive, study_root / MARKER_FILE, b"Written by qcdash make_demo_archive.\n")
    for session in SESSIONS:
        _write_session(archive, session)
    _write_gold_standards(archive)
    _write_malformed_file(archive)
    _write_config(archive)
    return archive


def _prepare_root(root, study_root, *, force):
    if root.exists() and not root.is_dir():
        raise DemoArchiveError(f"{root} is a file; pass a folder path for the demo archive.")
    if not root.exists() or not any(root.iterdir()):
        return
    if not force:
        raise DemoArchiveError(
            f"{root} is not empty. Pass an empty or new folder, or --force to replace the demo "
            f"archive in it."
        )
    if study_root.exists():
        if not (study_root / MARKER_FILE).is_file():
            raise DemoArchiveError(
                f"{study_root} exists but was not written by make_demo_archive (it has no "
                f"{MARKER_FILE} file), so --force does not delete it. Remove it yourself or "
                f"choose another folder."
            )
        shutil.rmtree(study_root)


def _write(archive, path, content):
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    archive.files.append(path)


# --- Sessions and series --------------------------------------------------------------------


def _write_session(archive, session):
    ident = datman_ids.parse_session_id(session.session_id)
    archive.timepoints.add(ident.timepoint_id)
    archive.sessions.append(ident.session_id)
    nii_dir = archive.study_root / "data" / "nii" / ident.timepoint_id
    qc_dir = archive.study_root / "qc" / ident.timepoint_id

    for position, tag in enumerate(session.tags):
        protocol = PROTOCOLS[tag]
        series = session.series.get(tag, FIRST_SERIES[ident.site][tag])
        stem = datman_ids.make_filename(ident, tag, series, protocol.series_description)
        seed = zlib.crc32(stem.encode("ascii"))
        data = synthetic_volume(protocol, np.random.default_rng(seed))

        _write(archive, nii_dir / f"{stem}.nii.gz", nifti_bytes(data, protocol))
        archive.nifti_files += 1
        sidecar = _sidecar(ident, protocol, series, position)
        sidecar.update(session.deviations.get(tag, {}))
        _write(archive, nii_dir / f"{stem}.json", json.dumps(sidecar, indent="\t") + "\n")
        if tag == "DTI60-1000":
            _write(archive, nii_dir / f"{stem}.bval", " ".join(map(str, BVALUES)) + "\n")
            rows = [" ".join(f"{vector[axis]:g}" for vector in BVECTORS) for axis in range(3)]
            _write(archive, nii_dir / f"{stem}.bvec", "\n".join(rows) + "\n")
        if tag == session.conversion_error_tag:
            text = CONVERSION_ERROR_TEXT.format(version=CONVERTER_VERSION, stem=stem)
            _write(archive, nii_dir / f"{stem}.err", text)
            archive.conversion_errors.append(stem)
        if not ident.is_phantom:
            # datman's QC report writes no images for anatomical or fMRI phantom scans.
            _write_qc_images(archive, qc_dir, stem, protocol, data)
    if not ident.is_phantom:
        _write_session_resources(archive, ident, session)


def _write_session_resources(archive, ident, session):
    """Write the session's tech notes and task files as XNAT and dm_task_files leave them."""
    resources = archive.study_root / "data" / "RESOURCES" / ident.session_id
    if ident.site in TECH_NOTES_SITES and ident.session_id != SESSION_WITHOUT_TECH_NOTES:
        notes = resources / "MR_notes" / f"{ident.session_id}_TechNotes.pdf"
        _write(archive, notes, tech_notes_pdf(ident.session_id))
        archive.tech_notes += 1
    if "RST" not in session.tags:
        return
    name = f"{ident.session_id}_RST_behav.csv"
    behaviour = resources / "behav" / name
    rows = ["trial,onset_s,response,reaction_time_s"]
    rng = np.random.default_rng(zlib.crc32(name.encode("ascii")))
    for trial in range(1, 13):
        rows.append(f"{trial},{trial * 15.0:.1f},{rng.integers(1, 5)},{rng.uniform(0.3, 1.2):.3f}")
    _write(archive, behaviour, "\n".join(rows) + "\n")
    link = archive.study_root / "task" / ident.session_id / name
    link.parent.mkdir(parents=True, exist_ok=True)
    # A relative link, as dm_task_files makes, so the archive can be moved.
    link.symlink_to(Path("..", "..", "data", "RESOURCES", ident.session_id, "behav", name))
    archive.files.append(link)
    archive.task_files += 1


def tech_notes_pdf(session_id):
    """Return a one-page PDF with a short technologist's note for the session."""
    lines = [
        f"Tech notes: {session_id}",
        "Scanned by: demo technologist",
        "Participant comfortable; no motion noted.",
    ]
    text = "BT /F1 12 Tf 72 720 Td 16 TL " + " ".join(f"({line}) '" for line in lines) + " ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(text), text.encode("ascii")),
    ]
    output = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(output))
        output += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(output)
    output += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        output += b"%010d 00000 n \n" % offset
    output += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(output)


def _write_gold_standards(archive):
    """Write one gold standard per site and tag in metadata/standards/, as datman keeps them.

    Each is the sidecar of the first human session at the site with that tag, before any
    deviation, so the deviating demo scans show as header mismatches.
    """
    standards = archive.study_root / "metadata" / "standards"
    written = set()
    for session in SESSIONS:
        ident = datman_ids.parse_session_id(session.session_id)
        if ident.is_phantom:
            continue
        for position, tag in enumerate(session.tags):
            if (ident.site, tag) in written:
                continue
            written.add((ident.site, tag))
            protocol = PROTOCOLS[tag]
            series = session.series.get(tag, FIRST_SERIES[ident.site][tag])
            stem = datman_ids.make_filename(ident, tag, series, protocol.series_description)
            sidecar = _sidecar(ident, protocol, series, position)
            _write(archive, standards / f"{stem}.json", json.dumps(sidecar, indent="\t") + "\n")
            if tag == "DTI60-1000":
                _write(archive, standards / f"{stem}.bval", " ".join(map(str, BVALUES)) + "\n")


def _sidecar(ident, protocol, series, position):
    """Return dcm2niix-style sidecar contents for one series."""
    scanner = SCANNERS[ident.site]
    minutes = 5 + 7 * position
    time = f"{9 + ident.session_number:02d}:{minutes:02d}:12.500000"
    acquired_on = demo_acquisition_date(ident)
    sidecar = {
        "Modality": "MR",
        "MagneticFieldStrength": 3,
        "ImagingFrequency": scanner["ImagingFrequency"],
        "Manufacturer": scanner["Manufacturer"],
        "ManufacturersModelName": scanner["ManufacturersModelName"],
        "InstitutionName": "qcdash demo imaging centre",
        "SoftwareVersions": scanner["SoftwareVersions"],
        "SeriesDescription": protocol.series_description,
        "ProtocolName": protocol.series_description,
        "SeriesNumber": series,
        "AcquisitionDateTime": f"{acquired_on.isoformat()}T{time}",
        "AcquisitionTime": time,
        **protocol.sidecar,
        "ConversionSoftware": "dcm2niix",
        "ConversionSoftwareVersion": CONVERTER_VERSION,
    }
    return sidecar


def demo_acquisition_date(ident):
    """Return a made-up scan date for a demo session. The dates spread over several months, so
    the study's progress chart and the oldest-first review order have something to show."""
    offset = sum(ord(char) for char in ident.site) % 11
    subject = int(ident.subject) if ident.subject.isdigit() else 0
    return DEMO_FIRST_SCAN_ON + timedelta(
        days=offset + 23 * subject + 9 * (ident.session_number - 1)
    )


def _write_malformed_file(archive):
    folder, name = MALFORMED_FILE
    data = synthetic_volume(PROTOCOLS["T1"], np.random.default_rng(zlib.crc32(name.encode())))
    path = archive.study_root / "data" / "nii" / folder / name
    _write(archive, path, nifti_bytes(data, PROTOCOLS["T1"]))
    archive.malformed_files.append(path)


# --- Volumes --------------------------------------------------------------------------------


def synthetic_volume(protocol, rng):
    """Return int16 data of shape SHAPE (plus time) that looks like a head in a scanner."""
    axes = [np.linspace(-1.0, 1.0, size) for size in SHAPE]
    x, y, z = np.meshgrid(*axes, indexing="ij")
    radius = (x / 0.85) ** 2 + (y / 0.95) ** 2 + (z / 0.9) ** 2
    head = np.where(radius < 1.0, 500.0, 0.0) + np.where(radius < 0.45, 250.0, 0.0)

    if protocol.volumes == 1:
        data = head + rng.normal(0.0, 15.0, SHAPE)
    else:
        volumes = []
        for index in range(protocol.volumes):
            if protocol.tag == "DTI60-1000":
                # b=0 volumes are bright, diffusion-weighted ones dimmer along their direction.
                weight = 1.0 if BVALUES[index] == 0 else 0.4 + 0.1 * abs(BVECTORS[index][0])
            else:
                weight = 1.0 + 0.02 * np.sin(index)
            volumes.append(head * weight + rng.normal(0.0, 15.0, SHAPE))
        data = np.stack(volumes, axis=-1)
    return np.clip(data, 0, None).astype(np.int16)


def nifti_bytes(data, protocol):
    """Return a gzip-compressed NIfTI-1 file of `data`, with a zero gzip time stamp."""
    affine = np.diag([*protocol.voxel_size, 1.0])
    image = nibabel.Nifti1Image(data, affine)
    image.header.set_xyzt_units("mm", "sec")
    if data.ndim == 4:
        repetition_time = protocol.sidecar["RepetitionTime"]
        image.header.set_zooms((*protocol.voxel_size, repetition_time))
    # gzip.compress with mtime=0 keeps the output identical from one build to the next.
    return gzip.compress(image.to_bytes(), mtime=0)


# --- QC images ------------------------------------------------------------------------------


def _write_qc_images(archive, qc_dir, stem, protocol, data):
    """Write the QC images of a series and its manifest, the way datman's QC report names them."""
    first = data[..., 0] if data.ndim == 4 else data
    if protocol.qc_type == "anat":
        images = {f"{stem}.png": (montage(first), 1, None)}
    elif protocol.qc_type == "fmri":
        mean = data.mean(axis=-1)
        sfnr = mean / (data.std(axis=-1) + 1.0)
        images = {
            f"{stem}_sfnr.png": (montage(sfnr), 3, "SFNR Map"),
            f"{stem}_montage.png": (montage(mean), 1, None),
            f"{stem}_raw.png": (montage(data[..., -1]), 2, "BOLD Montage"),
        }
    else:
        images = {
            f"{stem}_b0.png": (montage(first), 2, "b0 Montage"),
            f"{stem}_montage.png": (montage(data[..., 2]), 1, None),
        }

    # The manifest lists the images out of order on purpose: readers must sort by "order".
    manifest = {}
    for name, (pixels, order, title) in images.items():
        _write(archive, qc_dir / name, png_bytes(pixels))
        archive.qc_images += 1
        manifest[name] = {"order": order, "title": title, "caption": None}
    _write(archive, qc_dir / f"{stem}_manifest.json", json.dumps(manifest, indent=4) + "\n")


def montage(volume):
    """Return the axial slices of a 3D volume tiled in a grid, as uint8 grey levels."""
    volume = np.asarray(volume, dtype=float)
    top = volume.max()
    scaled = np.zeros_like(volume) if top <= 0 else volume / top * 255.0
    slices = [np.rot90(scaled[:, :, index]) for index in range(volume.shape[2])]
    rows = []
    for start in range(0, len(slices), MONTAGE_COLUMNS):
        row = slices[start : start + MONTAGE_COLUMNS]
        row += [np.zeros_like(slices[0])] * (MONTAGE_COLUMNS - len(row))
        rows.append(np.hstack(row))
    grid = np.vstack(rows)
    # Enlarge each voxel to a PNG_SCALE x PNG_SCALE block so the tiny volume is visible.
    grid = np.kron(grid, np.ones((PNG_SCALE, PNG_SCALE)))
    return np.round(grid).astype(np.uint8)


def png_bytes(pixels):
    """Encode a 2D uint8 array as an 8-bit grey-scale PNG (colour type 0, no interlacing)."""
    height, width = pixels.shape

    def chunk(kind, payload):
        checksum = zlib.crc32(kind + payload) & 0xFFFFFFFF
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", checksum)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    # Each scan line starts with filter type 0 (None).
    raw = b"".join(b"\x00" + pixels[row].tobytes() for row in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


# --- datman config --------------------------------------------------------------------------


def _write_config(archive):
    main_config = {
        "SystemSettings": {
            SYSTEM_NAME: {
                "DatmanProjectsDir": str(archive.root),
                "ConfigDir": str(archive.root / CONFIG_FOLDER),
            }
        },
        "Projects": {STUDY_NICKNAME: STUDY_CONFIG},
        "Paths": {
            "meta": "metadata/",
            "std": "metadata/standards/",
            "qc": "qc/",
            "data": "data/",
            "nii": "data/nii/",
            "log": "logs/",
        },
        "ExportSettings": {
            "T1": {"Formats": ["nii"], "QcType": "anat"},
            "RST": {"Formats": ["nii"], "QcType": "fmri", "QcPha": "default"},
            "DTI60-1000": {"Formats": ["nii"], "QcType": "dti", "QcPha": "qa_dti"},
        },
        "IgnoreHeaderFields": [
            "AcquisitionDateTime",
            "AcquisitionTime",
            "ConversionSoftwareVersion",
            "ProtocolName",
            "SeriesDescription",
            "SeriesNumber",
        ],
        "HeaderFieldTolerance": {"EchoTime": 0.005, "RepetitionTime": 1, "SliceTiming": 0.0026},
    }
    study_config = {
        "ProjectDir": STUDY_NICKNAME,
        "StudyTag": STUDY_CODE,
        "FullName": "qcdash demonstration study",
        "Description": "Synthetic scans written by make_demo_archive for trying qcdash.",
        "PrimaryContact": "Demo Contact",
        "IsOpen": True,
        "Sites": {
            "CMH": {
                "XnatArchive": "DEMO_CMH",
                "UsesTechNotes": True,
                "ExportInfo": {
                    "T1": {
                        "Pattern": {"SeriesDescription": ["T1", "BRAVO"]},
                        "Count": 1,
                        "PhaCount": 1,
                    },
                    "RST": {
                        "Pattern": {"SeriesDescription": ["Resting"]},
                        "Count": 1,
                        "PhaCount": 1,
                    },
                    "DTI60-1000": {"Pattern": {"SeriesDescription": ["DTI.60"]}, "Count": 1},
                },
            },
            "UTO": {
                "XnatArchive": "DEMO_UTO",
                "ExportInfo": {
                    "T1": {"Pattern": {"SeriesDescription": ["T1"]}, "Count": 1},
                    "RST": {"Pattern": {"SeriesDescription": ["Resting"]}, "Count": 1},
                    "DTI60-1000": {"Pattern": {"SeriesDescription": ["DTI"]}, "Count": 1},
                },
            },
        },
    }
    _write(archive, archive.main_config, _yaml(main_config))
    _write(archive, archive.study_config, _yaml(study_config))


def _yaml(data):
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)
