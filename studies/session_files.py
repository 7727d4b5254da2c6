"""Find a session's tech notes and task files in the study archive, as datman lays them out.

* `data/RESOURCES/<SESSION ID>/` contains the non-DICOM files that XNAT holds for a session,
  in subfolders named by XNAT resource label. datman picks one of them as the session's tech
  notes by scoring file names (see `tech_notes_score`).
* `task/<SESSION ID>/` contains the behavioural task files that datman's dm_task_files links
  there from RESOURCES.

Both folders are per session (with the `_NN` suffix), unlike `data/nii/`, which is per timepoint.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

RESOURCES_FOLDER = Path("data", "RESOURCES")
TASK_FOLDER = Path("task")

# datman scores PDF and image files; plain text is accepted too, because some sites type their
# notes into a .txt file.
TECH_NOTES_EXTENSIONS = (".pdf", ".txt", ".png", ".jpg", ".jpeg")


@dataclass(frozen=True)
class ArchiveFile:
    """A file found in the archive: its path relative to the study folder, size and mtime."""

    path: str
    name: str
    size: int
    modified_at: datetime


def tech_notes_score(name):
    """Score a file name as datman does: "tech" +3, "note" +2, a .pdf extension +1.

    A candidate scoring 0 is never taken as tech notes, so a behavioural log in RESOURCES is
    not mistaken for them.
    """
    lowered = name.lower()
    if not lowered.endswith(TECH_NOTES_EXTENSIONS):
        return 0
    score = 0
    if "tech" in lowered:
        score += 3
    if "note" in lowered:
        score += 2
    if lowered.endswith(".pdf"):
        score += 1
    return score


def find_tech_notes(study_root, session_id):
    """Return the session's tech notes as an ArchiveFile, or None when there are none.

    The highest-scoring file anywhere under `data/RESOURCES/<session_id>/` wins; a tie goes to
    the path that sorts first, so repeated imports pick the same file.
    """
    folder = study_root / RESOURCES_FOLDER / session_id
    best = None
    for path in _files_under(folder):
        score = tech_notes_score(path.name)
        if score == 0 or not path.is_file():
            continue
        if best is None or score > best[0]:
            best = (score, path)
    if best is None:
        return None
    return _archive_file(study_root, best[1])


def list_task_files(study_root, session_id):
    """Return `(files, unreadable)` for the files under `task/<session_id>/`, sorted by path.

    `files` are ArchiveFiles; `unreadable` are the paths that cannot be read, such as symlinks
    whose target is gone.
    """
    folder = study_root / TASK_FOLDER / session_id
    files, unreadable = [], []
    for path in _files_under(folder):
        file = _archive_file(study_root, path)
        if file is None:
            unreadable.append(path)
        else:
            files.append(file)
    return files, unreadable


def _files_under(folder):
    """Yield the files below `folder` in path order, skipping hidden files and folders."""
    if not folder.is_dir():
        return
    for path in sorted(folder.rglob("*")):
        relative_parts = path.relative_to(folder).parts
        if any(part.startswith(".") for part in relative_parts):
            continue
        # A broken symlink is not a file, but it is yielded so that the caller can report it.
        if path.is_file() or path.is_symlink():
            yield path


def _archive_file(study_root, path):
    try:
        # stat() follows symlinks, so a task file linked into RESOURCES gets the target's size.
        stat = path.stat()
    except OSError:
        # A broken symlink or a file removed since the folder was listed.
        return None
    return ArchiveFile(
        path=path.relative_to(study_root).as_posix(),
        name=path.name,
        size=stat.st_size,
        modified_at=datetime.fromtimestamp(int(stat.st_mtime), tz=UTC),
    )
