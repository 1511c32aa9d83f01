"""REDS download (resumable, size-checked) and prepare (unzip into the layout, corrupt zips named),
against a small HTTP server on 127.0.0.1 serving tiny zips."""

from __future__ import annotations

import io
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import torch
from _data_trees import as_tensor, random_frames
from PIL import Image

from afvsr.cli import main
from afvsr.data import REDS
from afvsr.data.download import REDS_URLS, download_file, download_reds, prepare_reds, reds_url
from afvsr.errors import AfvsrError


class Handler(BaseHTTPRequestHandler):
    """GET with Range support; ``server.truncate`` names files whose next response stops halfway."""

    def do_GET(self):  # noqa: N802 (the http.server API)
        server = self.server
        name = self.path.lstrip("/")
        server.log.append((name, self.headers.get("Range")))
        if name not in server.files:
            self.send_error(404)
            return
        data = server.files[name]
        start = 0
        ranged = self.headers.get("Range")
        if ranged and not server.ignore_range:
            start = int(ranged.removeprefix("bytes=").rstrip("-"))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("Content-Type", "application/zip")
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        body = data[start:]
        if name in server.truncate:
            server.truncate.discard(name)
            body = body[: len(body) // 2]  # announce everything, send half, hang up
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.files, httpd.truncate, httpd.log, httpd.ignore_range = {}, set(), [], False
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def url_of(httpd) -> str:
    return f"http://127.0.0.1:{httpd.server_address[1]}"


def png_bytes(frame: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="PNG")
    return buffer.getvalue()


def make_zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def reds_zips() -> tuple[dict[str, bytes], dict[str, np.ndarray]]:
    """Tiny REDS zips: 2 frames of 8x8 (LR 2x2) for the REDS4 and REDSval4 clips.

    train_sharp.zip has the official nesting (train/train_sharp/000/...); the bicubic zip of the
    train part lacks the X4 folder, as some re-packed copies do.
    """
    frames, zips = {}, {}
    for part, clips in (
        ("train", ("000", "011", "015", "020")),
        ("val", ("000", "001", "006", "017")),
    ):
        gt_members, lq_members = {}, {}
        for c, clip in enumerate(clips):
            gt = random_frames(2, 8, 8, seed=c + 10 * (part == "val"))
            lq = random_frames(2, 2, 2, seed=100 + c)
            frames[f"{part}/{clip}"] = gt
            frames[f"{part}/{clip}/lq"] = lq
            for f in range(2):
                gt_members[f"{part}/{part}_sharp/{clip}/{f:08d}.png"] = png_bytes(gt[f])
                x4 = "" if part == "train" else "X4/"
                lq_members[f"{part}/{part}_sharp_bicubic/{x4}{clip}/{f:08d}.png"] = png_bytes(lq[f])
        zips[f"{part}_sharp.zip"] = make_zip(gt_members)
        zips[f"{part}_sharp_bicubic.zip"] = make_zip(lq_members)
    return zips, frames


def test_url_table_lists_the_four_zips():
    assert list(REDS_URLS) == [
        "train_sharp.zip",
        "train_sharp_bicubic.zip",
        "val_sharp.zip",
        "val_sharp_bicubic.zip",
    ]
    assert reds_url("val_sharp.zip", base_url="http://m/x/") == "http://m/x/val_sharp.zip"
    assert reds_url("val_sharp.zip").startswith("https://cv.snu.ac.kr/")
    assert "1MGeObVQ1-Z29f-myDP7-8c3u0_xECKXq" in reds_url("val_sharp.zip", mirror="google_drive")


def test_download_resumes_and_prepare_arranges(server, tmp_path):
    zips, frames = reds_zips()
    server.files.update(zips)
    server.truncate.add("train_sharp.zip")  # first response stops halfway
    paths = download_reds(tmp_path, base_url=url_of(server), progress=False)
    assert [p.name for p in paths] == list(REDS_URLS)
    for path in paths:
        assert path.read_bytes() == zips[path.name]
    ranges = [r for name, r in server.log if name == "train_sharp.zip"]
    half = len(zips["train_sharp.zip"]) // 2
    assert ranges == [None, f"bytes={half}-"]  # resumed where it stopped
    assert not list((tmp_path / "downloads").glob("*.part"))

    prepare_reds(tmp_path)
    gt_file = tmp_path / "train" / "train_sharp" / "011" / "00000001.png"
    lq_file = tmp_path / "train" / "train_sharp_bicubic" / "X4" / "011" / "00000001.png"
    assert gt_file.is_file() and lq_file.is_file()
    assert (tmp_path / "val" / "val_sharp_bicubic" / "X4" / "017" / "00000000.png").is_file()
    item = REDS(tmp_path, split="REDS4")[1]
    torch.testing.assert_close(item["gt"], as_tensor(frames["train/011"]), rtol=0, atol=0)
    torch.testing.assert_close(item["lq"], as_tensor(frames["train/011/lq"]), rtol=0, atol=0)
    assert len(REDS(tmp_path, split="REDSval4")) == 4


def test_interrupted_run_is_resumed_by_the_next_run(server, tmp_path):
    data = make_zip({"train/train_sharp/000/00000000.png": b"x" * 5000})
    server.files["train_sharp.zip"] = data
    server.truncate.add("train_sharp.zip")
    dest = tmp_path / "train_sharp.zip"
    with pytest.raises(AfvsrError, match="stopped at .* bytes; run again to resume"):
        download_file(f"{url_of(server)}/train_sharp.zip", dest, retries=0, progress=False)
    part = tmp_path / "train_sharp.zip.part"
    assert part.stat().st_size == len(data) // 2 and not dest.exists()
    download_file(f"{url_of(server)}/train_sharp.zip", dest, retries=0, progress=False)
    assert dest.read_bytes() == data and not part.exists()


def test_server_without_range_support_restarts(server, tmp_path):
    data = make_zip({"val/val_sharp/000/00000000.png": b"y" * 3000})
    server.files["val_sharp.zip"] = data
    server.ignore_range = True
    (tmp_path / "val_sharp.zip.part").write_bytes(b"garbage")
    download_file(f"{url_of(server)}/val_sharp.zip", tmp_path / "val_sharp.zip", progress=False)
    assert (tmp_path / "val_sharp.zip").read_bytes() == data


def test_offline_and_http_errors_are_one_line(server, tmp_path, capsys):
    with pytest.raises(AfvsrError, match="cannot download .*train_sharp.zip: HTTP 404"):
        download_reds(tmp_path, names=["train_sharp.zip"], base_url=url_of(server), progress=False)
    port = server.server_address[1]
    server.shutdown()
    server.server_close()
    code = main(["data", "download", "reds", "--root", str(tmp_path), "--quiet",
                 "--base-url", f"http://127.0.0.1:{port}"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("afvsr: error: cannot download") and err.count("\n") == 1


def test_not_a_zip_is_refused(server, tmp_path):
    server.files["val_sharp.zip"] = b"<html>quota exceeded</html>"
    with pytest.raises(AfvsrError, match="not a zip archive"):
        download_reds(tmp_path, names=["val_sharp.zip"], base_url=url_of(server), progress=False)


def test_prepare_reports_a_corrupt_zip(tmp_path, capsys):
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    data = bytearray(make_zip({"val/val_sharp/000/00000000.png": b"z" * 2000}))
    data[100] ^= 0xFF  # flip a byte inside the member: CRC mismatch
    (downloads / "val_sharp.zip").write_bytes(bytes(data))
    with pytest.raises(AfvsrError, match=r"corrupt zip .*val_sharp.zip: .*CRC"):
        prepare_reds(tmp_path, names=["val_sharp.zip"])
    assert not (tmp_path / "val" / "val_sharp").exists()
    assert not list((tmp_path / "val").iterdir())  # no half-extracted folder left
    (downloads / "val_sharp.zip").write_bytes(bytes(data[: len(data) // 2]))  # truncated
    code = main(["data", "prepare", "reds", "--root", str(tmp_path), "--only", "val_sharp.zip"])
    err = capsys.readouterr().err
    assert code == 2 and "corrupt zip" in err and "val_sharp.zip" in err


def test_prepare_needs_the_zips(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing in .*downloads: train_sharp.zip"):
        prepare_reds(tmp_path)


def test_prepare_refuses_unsafe_members(tmp_path):
    (tmp_path / "downloads").mkdir()
    data = make_zip({"../evil/val_sharp/000/0.png": b"x"})
    Path(tmp_path / "downloads" / "val_sharp.zip").write_bytes(data)
    with pytest.raises(AfvsrError, match="unsafe path"):
        prepare_reds(tmp_path, names=["val_sharp.zip"])
