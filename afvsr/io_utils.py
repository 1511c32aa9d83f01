"""Small file helpers shared by every command: atomic writes, reading text, natural sorting.

Temporary names are afvsr's own pattern, ``.<name>.<8 random characters>.tmp<ext>`` next to the
target (shortened so they fit the file system's name limit whenever the target's name does).
Those left behind by a killed process (SIGKILL, power loss) are removed by the next afvsr run
that writes the same target, if they are older than that run.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from afvsr.errors import AfvsrError

RUN_STARTED = time.time()  # temp files older than this come from earlier runs
RANDOM_PART = r"[a-z0-9_]{8}"  # what tempfile.mkstemp/mkdtemp put between prefix and suffix
_RANDOM_LEN = 8
_cleaned: set[tuple[str, str]] = set()  # (folder, pattern) already cleaned by this process


def name_max(folder: str | os.PathLike) -> int:
    """The longest file name, in bytes, the file system holding ``folder`` accepts (255 if unknown)."""
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):
        return 255


def temp_affixes(folder: Path, name: str, suffix: str) -> tuple[str, str]:
    """``(prefix, suffix)`` of temporary names for ``name`` in ``folder``: ``.<name>.`` + random +
    ``suffix``, with ``name`` shortened (whole characters) so the temp name fits the file
    system's limit."""
    room = name_max(folder) - len(os.fsencode(f"..{suffix}")) - _RANDOM_LEN
    if room < 0:  # an absurdly long extension: keep the limit, lose the extension
        suffix, room = ".tmp", name_max(folder) - len(b"...tmp") - _RANDOM_LEN
    short = name
    while short and len(os.fsencode(short)) > room:
        short = short[:-1]
    return f".{short}.", suffix


def remove_stale_temps(folder: Path, prefix: str, suffix: str) -> list[Path]:
    """Remove ``folder/<prefix><8 random><suffix>`` files and folders older than this run.

    Only names of exactly afvsr's temp pattern, and only once per folder and pattern in a
    process. Returns what was removed.
    """
    pattern = re.compile(re.escape(prefix) + RANDOM_PART + re.escape(suffix))
    key = (os.path.realpath(folder), pattern.pattern)
    if key in _cleaned:
        return []
    _cleaned.add(key)
    removed = []
    with contextlib.suppress(OSError), os.scandir(folder) as entries:
        for entry in entries:
            if not pattern.fullmatch(entry.name):
                continue
            with contextlib.suppress(OSError):
                if entry.stat(follow_symlinks=False).st_mtime >= RUN_STARTED:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path)
                else:
                    os.unlink(entry.path)
                removed.append(Path(entry.path))
    return removed


def umask_mode(mode: int) -> int:
    """``mode`` filtered by the process umask: what ``open``/``mkdir`` would have created."""
    umask = os.umask(0)
    os.umask(umask)
    return mode & ~umask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only on success.

    The temporary file lives in the target folder (so the rename is atomic on one file system)
    and keeps the target's extension (so writers that look at it, like PyAV, pick the right
    format). On any exception, including KeyboardInterrupt, the temporary file is removed and
    ``path`` is left as it was. Temporary files of the same target left by an earlier, killed
    run are removed first.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise FileNotFoundError(f"output folder does not exist: {folder}")
    ext = path.suffix if suffix is None else suffix
    prefix, tmp_suffix = temp_affixes(folder, path.stem, f".tmp{ext}")
    remove_stale_temps(folder, prefix, tmp_suffix)
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=tmp_suffix, dir=folder)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates 0600 files; give the result the permissions a plain open() would
        # (after the writer is done: some, like safetensors, replace the file they are given).
        if tmp_path.is_file():
            os.chmod(tmp_path, umask_mode(0o666))
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def read_utf8(path: Path, *, expected: str) -> str:
    """The text of the user's file ``path``; an AfvsrError naming the first byte that is not
    UTF-8 and what the file should be (``expected="a JSONL training log"``)."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise AfvsrError(
            f"{path}: not UTF-8 text (byte {exc.start}); expected {expected}"
        ) from None


_DIGITS = re.compile(r"(\d+)")


def natural_sort_key(name: str) -> tuple:
    """Sort key that orders ``im2`` before ``im10`` and ``Frame 001.png`` before ``Frame 002.png``."""
    parts = _DIGITS.split(name)
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p.lower()) for p in parts)
