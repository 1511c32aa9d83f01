"""Download the REDS zips (resumable) and arrange them into the layout ``REDS`` reads.

``download_reds`` fetches the four zips of the super-resolution track into ``<root>/downloads/``:
partial data is kept in ``<name>.zip.part`` and resumed with an HTTP Range request (on a retry
and on the next run); the size is checked against what the server announced; a finished file
must be a zip archive. ``prepare_reds`` checks each zip (CRC of every member) while extracting it
into a hidden folder, then renames that onto ``<root>/train/train_sharp`` etc.
"""

from __future__ import annotations

import http.client
import re
import shutil
import sys
import urllib.error
import urllib.request
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from afvsr.errors import AfvsrError

# The URLs the REDS page (https://seungjunnah.github.io/Datasets/reds.html) lists for the
# super-resolution track: the SNU CVLab server (plain HTTPS, resumable) and Google Drive.
REDS_URLS: dict[str, dict[str, str]] = {
    "train_sharp.zip": {
        "snu": "https://cv.snu.ac.kr/~snah/Deblur/dataset/REDS/train_sharp.zip",
        "google_drive": "https://drive.google.com/open?id=1YLksKtMhd2mWyVSkvhDaDLWSc1qYNCz-",
    },
    "train_sharp_bicubic.zip": {
        "snu": "https://cv.snu.ac.kr/~snah/Deblur/dataset/REDS/train_sharp_bicubic.zip",
        "google_drive": "https://drive.google.com/open?id=1a4PrjqT-hShvY9IyJm3sPF0ZaXyrCozR",
    },
    "val_sharp.zip": {
        "snu": "https://cv.snu.ac.kr/~snah/Deblur/dataset/REDS/val_sharp.zip",
        "google_drive": "https://drive.google.com/open?id=1MGeObVQ1-Z29f-myDP7-8c3u0_xECKXq",
    },
    "val_sharp_bicubic.zip": {
        "snu": "https://cv.snu.ac.kr/~snah/Deblur/dataset/REDS/val_sharp_bicubic.zip",
        "google_drive": "https://drive.google.com/open?id=1sChhtzN9Css10gX7Xsmc2JaC-2Pzco6a",
    },
}
MIRRORS = ("snu", "google_drive")
# zip -> (folder under root, name of the folder inside the zip that holds the clips)
REDS_TARGETS: dict[str, tuple[str, str]] = {
    "train_sharp.zip": ("train/train_sharp", "train_sharp"),
    "train_sharp_bicubic.zip": ("train/train_sharp_bicubic", "train_sharp_bicubic"),
    "val_sharp.zip": ("val/val_sharp", "val_sharp"),
    "val_sharp_bicubic.zip": ("val/val_sharp_bicubic", "val_sharp_bicubic"),
}
CHUNK = 1 << 20


def reds_url(name: str, *, mirror: str = "snu", base_url: str | None = None) -> str:
    """Where to fetch ``name``: ``base_url/name`` when given, else the table's ``mirror`` URL."""
    if name not in REDS_URLS:
        raise ValueError(f"expected a REDS zip in {list(REDS_URLS)}, got {name!r}")
    if base_url is not None:
        return base_url.rstrip("/") + "/" + name
    if mirror not in MIRRORS:
        raise ValueError(f"expected mirror in {MIRRORS}, got {mirror!r}")
    url = REDS_URLS[name][mirror]
    if mirror == "google_drive":  # the page lists viewer links; this form serves the file
        file_id = url.split("id=")[1]
        url = (
            f"https://drive.usercontent.google.com/download?id={file_id}&export=download&confirm=t"
        )
    return url


def _total_size(response: http.client.HTTPResponse, offset: int) -> int | None:
    """Full file size announced by the server (Content-Range of a 206, else Content-Length)."""
    if response.status == 206:
        match = re.fullmatch(
            r"bytes (\d+)-(\d+)/(\d+|\*)", response.headers.get("Content-Range", "")
        )
        if not match or int(match[1]) != offset:
            return None
        return None if match[3] == "*" else int(match[3])
    length = response.headers.get("Content-Length")
    return int(length) if length is not None else None


def _progress(total: int | None, initial: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(
        total=total,
        initial=initial,
        desc=desc,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        file=sys.stderr,
        disable=not enabled,
    )


def download_file(
    url: str, dest: str | Path, *, retries: int = 3, timeout: float = 60, progress: bool = True
) -> Path:
    """Download ``url`` to ``dest``, resuming from ``dest + ".part"`` when it exists.

    Returns ``dest``. Raises AfvsrError (one line) when the server cannot be reached, answers
    with an error, or the transfer keeps stopping short after ``retries`` resumed attempts (the
    partial file stays, so running again continues where it stopped).
    """
    dest = Path(dest)
    if dest.exists():
        return dest
    part = dest.with_name(dest.name + ".part")
    for attempt in range(retries + 1):
        offset = part.stat().st_size if part.exists() else 0
        headers = {"User-Agent": "afvsr"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        request = urllib.request.Request(url, headers=headers)
        try:
            response = urllib.request.urlopen(request, timeout=timeout)
        except urllib.error.HTTPError as exc:
            if exc.code == 416 and offset:  # nothing left past offset: the part may be whole
                total = exc.headers.get("Content-Range", "").rpartition("/")[2]
                if total.isdigit() and int(total) == offset:
                    break
            raise AfvsrError(f"cannot download {url}: HTTP {exc.code} {exc.reason}") from exc
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise AfvsrError(
                f"cannot download {url}: {reason} (offline? --base-url sets a mirror)"
            ) from exc
        with response:
            if response.headers.get_content_type() == "text/html":
                raise AfvsrError(f"cannot download {url}: the server sent a web page, not the file")
            if response.status != 206 and offset:  # the server ignored Range: start again
                offset = 0
            total = _total_size(response, offset)
            mode = "ab" if offset else "wb"
            with open(part, mode) as out, _progress(total, offset, dest.name, progress) as bar:
                try:
                    while chunk := response.read(CHUNK):
                        out.write(chunk)
                        bar.update(len(chunk))
                except (http.client.IncompleteRead, OSError) as exc:
                    if attempt == retries:
                        raise AfvsrError(
                            f"download of {dest.name} stopped at {part.stat().st_size} bytes "
                            f"({exc.__class__.__name__}); run again to resume"
                        ) from exc
                    continue
        size = part.stat().st_size
        if total is None or size == total:
            break
        if size > total:
            part.unlink()
            raise AfvsrError(f"download of {dest.name} is larger than announced ({size} > {total})")
        if attempt == retries:
            raise AfvsrError(
                f"download of {dest.name} stopped at {size} of {total} bytes; run again to resume"
            )
    if not zipfile.is_zipfile(part):
        raise AfvsrError(f"downloaded {part} is not a zip archive; delete it and download again")
    part.replace(dest)
    return dest


def download_reds(
    root: str | Path,
    *,
    names: list[str] | None = None,
    base_url: str | None = None,
    mirror: str = "snu",
    retries: int = 3,
    progress: bool = True,
) -> list[Path]:
    """Fetch the REDS zips (all four by default) into ``<root>/downloads/``."""
    names = list(REDS_URLS) if names is None else names
    folder = Path(root) / "downloads"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in names:
        url = reds_url(name, mirror=mirror, base_url=base_url)
        if (folder / name).exists():
            print(f"{name}: already downloaded", file=sys.stderr)
        paths.append(download_file(url, folder / name, retries=retries, progress=progress))
    return paths


def _member_target(member: str, inner: str, zip_path: Path) -> PurePosixPath | None:
    """Where a zip member goes relative to its target folder (None for folders)."""
    parts = PurePosixPath(member).parts
    if member.startswith("/") or ".." in parts:
        raise AfvsrError(f"unsafe path {member!r} in {zip_path}")
    if member.endswith("/"):
        return None
    if inner not in parts:
        raise AfvsrError(f"unexpected member {member!r} in {zip_path}: no '{inner}/' folder")
    rest = parts[parts.index(inner) + 1 :]
    if inner.endswith("_bicubic") and not re.fullmatch(r"X\d+", rest[0]):
        rest = ("X4", *rest)  # the bicubic zips hold X4/<clip>/...; add it if a copy lacks it
    return PurePosixPath(*rest)


def _extract(zip_path: Path, inner: str, target: Path) -> int:
    """Extract ``zip_path`` into ``target`` via a hidden folder; returns the number of files."""
    tmp = target.with_name(f".{target.name}.partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    count = 0
    try:
        with zipfile.ZipFile(zip_path) as archive:
            for info in archive.infolist():
                rel = _member_target(info.filename, inner, zip_path)
                if rel is None:
                    continue
                out = tmp / rel
                out.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(info) as src, open(out, "wb") as dst:
                    shutil.copyfileobj(src, dst, CHUNK)  # raises BadZipFile on a CRC mismatch
                count += 1
        if count == 0:
            raise AfvsrError(f"{zip_path} holds no files")
        tmp.replace(target)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise AfvsrError(
            f"corrupt zip {zip_path}: {exc}; delete it and run `afvsr data download reds` again"
        ) from exc
    except OSError as exc:
        raise AfvsrError(f"cannot extract {zip_path} into {target}: {exc}") from exc
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return count


def prepare_reds(
    root: str | Path, *, names: list[str] | None = None, force: bool = False
) -> dict[str, Path]:
    """Unzip ``<root>/downloads/*.zip`` into ``<root>/train/train_sharp/<clip>/00000000.png`` etc.

    A target folder that already exists is left alone unless ``force``. Returns zip -> folder.
    """
    root = Path(root)
    names = list(REDS_TARGETS) if names is None else names
    unknown = [n for n in names if n not in REDS_TARGETS]
    if unknown:
        raise ValueError(f"expected REDS zips in {list(REDS_TARGETS)}, got {unknown}")
    missing = [n for n in names if not (root / "downloads" / n).is_file()]
    if missing:
        raise FileNotFoundError(
            f"missing in {root / 'downloads'}: {', '.join(missing)} "
            "(run `afvsr data download reds` first, or pass --only)"
        )
    done = {}
    for name in names:
        folder, inner = REDS_TARGETS[name]
        target = root / folder
        if target.exists():
            if not force:
                print(f"{name}: {target} exists, left as is (--force redoes it)", file=sys.stderr)
                done[name] = target
                continue
            shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        count = _extract(root / "downloads" / name, inner, target)
        print(f"{name}: {count} files -> {target}", file=sys.stderr)
        done[name] = target
    return done
