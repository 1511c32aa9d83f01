"""Where a command may write: never onto or into its inputs, never over what afvsr did not write.

Every command calls :func:`check_outputs` with everything it will write and everything it reads,
before any work. An output that is an input, lies inside an input folder, or holds an input is
refused (``--force`` or not); paths are compared after resolving symlinks and ``..``, and files
by device and inode too, so a hard link to an input is the input. An existing output is replaced
only with ``force``, and only if it is what afvsr itself writes there: a regular file, or a folder
that holds nothing but afvsr's frame outputs. Anything else is refused, naming it. A command that
marks its files (a PNG's ``Software`` text chunk, a video's ``comment`` tag, a CSV's header)
passes the check as ``Output.own``: an earlier file of its own is replaced without ``force``.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from afvsr.errors import AfvsrError

FILE = "file"  # one file, written atomically
FRAMES = "frames"  # a flat folder of PNG frames (`afvsr upscale` to a folder)
CLIP_FRAMES = "clip frames"  # folders of NNNNNNNN.png, one per clip (`afvsr eval --save-frames`)
KINDS = (FILE, FRAMES, CLIP_FRAMES)
_CLIP_FRAME_NAME = re.compile(r"\d{8}\.png")


@dataclass(frozen=True, kw_only=True)
class Output:
    """A path a command will write. ``label`` names it for the user ("output", "--out"); ``kind``
    is one of :data:`KINDS`; ``own(path)`` tells an earlier file this command wrote there (a
    ``FILE``), which is replaced without ``force``."""

    path: Path
    label: str = "output"
    kind: str = FILE
    own: Callable[[Path], bool] | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"expected kind in {KINDS}, got {self.kind!r}")
        object.__setattr__(self, "path", Path(self.path))


def _identity(path: Path) -> tuple[int, int] | None:
    """``(st_dev, st_ino)`` of what ``path`` points to, None if it does not exist."""
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return st.st_dev, st.st_ino


def _inside(child: str, parent: str) -> bool:
    """Whether the resolved path ``child`` lies strictly inside the resolved folder ``parent``."""
    return child != parent and child.startswith(parent.rstrip(os.sep) + os.sep)


def _hard_link_in(path: Path, folder: Path) -> Path | None:
    """A file inside ``folder`` that is the same file (a hard link) as ``path``, if any."""
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    if not stat.S_ISREG(st.st_mode) or st.st_nlink < 2:
        return None
    for root, _, files in os.walk(folder):
        for name in files:
            other = os.path.join(root, name)
            try:
                ost = os.stat(other, follow_symlinks=False)
            except OSError:
                continue
            if (ost.st_dev, ost.st_ino) == (st.st_dev, st.st_ino):
                return Path(other)
    return None


def _check_not_input(out: Output, inputs: Sequence[Path]) -> None:
    real = os.path.realpath(out.path)
    ident = _identity(out.path)
    for inp in inputs:
        real_in = os.path.realpath(inp)
        if real == real_in or (ident is not None and ident == _identity(inp)):
            raise AfvsrError(f"{out.label} {out.path} is the input {inp}; choose another path")
        if _inside(real_in, real):
            raise AfvsrError(f"{out.label} {out.path} holds the input {inp}; choose another path")
        if os.path.isdir(inp):
            if _inside(real, real_in):
                raise AfvsrError(
                    f"{out.label} {out.path} is inside the input folder {inp}; choose a path "
                    "outside it"
                )
            link = _hard_link_in(out.path, Path(inp))
            if link is not None:
                raise AfvsrError(
                    f"{out.label} {out.path} is the input {link} (a hard link); choose another path"
                )


def foreign_entry(folder: Path, kind: str) -> Path | None:
    """The first entry of ``folder`` that afvsr would not have written as ``kind`` frames, if any.

    ``FRAMES``: regular ``*.png`` files, no subfolders. ``CLIP_FRAMES``: subfolders (any depth)
    holding only regular ``NNNNNNNN.png`` files.
    """
    for root, dirs, files in os.walk(folder):
        here = Path(root)
        if kind == FRAMES and dirs:
            return here / dirs[0]
        for name in files:
            path = here / name
            regular = stat.S_ISREG(os.lstat(path).st_mode)
            ok = name.endswith(".png") if kind == FRAMES else bool(_CLIP_FRAME_NAME.fullmatch(name))
            if not regular or not ok or (kind == CLIP_FRAMES and here == folder):
                return path
        for name in dirs:
            if os.path.islink(here / name):
                return here / name
    return None


def _check_parent(out: Output) -> None:
    """The nearest existing folder above the output must be a folder (not a file)."""
    parent = out.path.parent
    while not os.path.lexists(parent) and parent != parent.parent:
        parent = parent.parent
    if os.path.lexists(parent) and not parent.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(parent))


def _check_replaceable(out: Output, *, force: bool) -> None:
    path = out.path
    if not os.path.lexists(path):
        return
    if out.kind == FILE:
        if path.is_dir():
            raise AfvsrError(f"{out.label} {path} is a folder; expected a file path")
        if path.exists() and not stat.S_ISREG(os.stat(path).st_mode):
            raise AfvsrError(f"{out.label} {path} is not a regular file; will not replace it")
        if not force and not (out.own is not None and out.own(path)):
            raise FileExistsError(f"output exists: {path} (use --force to overwrite)")
        return
    if not path.is_dir():
        raise AfvsrError(
            f"{out.label} {path} is a file; will not replace it with a folder of frames"
        )
    if path.is_symlink():
        raise AfvsrError(f"{out.label} {path} is a link to a folder; will not replace it")
    foreign = foreign_entry(path, out.kind)
    if foreign is not None:
        raise AfvsrError(
            f"{out.label} {path} holds {foreign.name!r}, which afvsr did not write; will not "
            "replace that folder, even with --force: choose a new or empty folder"
        )
    if any(path.iterdir()) and not force:
        raise FileExistsError(f"output exists: {path} (use --force to overwrite)")


def check_outputs(
    outputs: Sequence[Output],
    inputs: Iterable[str | os.PathLike | None],
    *,
    force: bool,
) -> None:
    """Refuse, with a one-line error, outputs that would lose data; call before any work.

    Args:
        outputs: everything the command will write.
        inputs: everything it reads (model files, data folders, results files, logs, configs);
            None and paths that do not exist are skipped.
        force: replace existing outputs (only files, and folders of afvsr's own frames).

    Raises:
        AfvsrError: an output is, holds, or lies inside an input; two outputs share a path; an
            existing output is not what afvsr writes there.
        NotADirectoryError: a file stands where a folder above an output should be.
        FileExistsError: an output exists and ``force`` is False.
    """
    existing = [Path(p) for p in inputs if p is not None and os.path.lexists(p)]
    for i, out in enumerate(outputs):
        _check_not_input(out, existing)
        for other in outputs[:i]:
            if os.path.realpath(other.path) == os.path.realpath(out.path):
                raise AfvsrError(
                    f"{other.label} and {out.label} would both be written to {out.path}"
                )
        _check_parent(out)
        _check_replaceable(out, force=force)


def is_tagged_png(path: Path, software: str) -> bool:
    """Whether ``path`` is a regular PNG file whose ``Software`` text chunk is ``software``."""
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        return False
    try:
        with Image.open(path) as image:
            return image.format == "PNG" and image.info.get("Software") == software
    except (OSError, UnidentifiedImageError):
        return False


def is_tagged_video(path: Path, comment: str) -> bool:
    """Whether ``path`` is a regular video file whose container ``comment`` tag is ``comment``."""
    import av

    if not path.is_file():
        return False
    try:
        with av.open(str(path)) as container:
            return container.metadata.get("comment") == comment
    except (OSError, av.error.FFmpegError):
        return False
