"""Download helpers against a local HTTP server (127.0.0.1 only; nothing reaches the internet).

The server serves archives built here, honours HTTP Range requests (for resumption) and can be told
to cut a response short, to ignore Range, or to answer 404.
"""
import hashlib
import io
import json
import stat
import threading
import wave
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from audio_xai_kit.core import DataError
from audio_xai_kit.data import (DownloadError, download, fetch_audiomnist, fetch_fsdd, read_audiomnist,
                                read_fsdd, safe_extract)


def _wav_bytes(n=160, sr=8000) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1); w.setsampwidth(2); w.setframerate(sr)
        w.writeframes((np.sin(np.arange(n) / 3) * 8000).astype("<i2").tobytes())
    return buf.getvalue()


def audiomnist_zip(speakers=("01", "02", "03"), digits=(0, 1), takes=(0, 1), top="AudioMNIST-abc",
                   women=("02",), extra=None, meta_skip=()) -> bytes:
    "A small archive in the layout of GitHub's AudioMNIST zip: <top>/data/NN/d_NN_t.wav + meta."
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(f"{top}/README.md", "AudioMNIST miniature")
        meta = {s: {"accent": "x", "age": 30, "gender": "female" if s in women else "male", "native speaker": "no",
                    "origin": "test", "recordingdate": "17-01-01", "recordingroom": "lab"}
                for s in speakers if s not in meta_skip}
        z.writestr(f"{top}/data/audioMNIST_meta.txt", json.dumps(meta))
        for s in speakers:
            for d in digits:
                for t in takes:
                    z.writestr(f"{top}/data/{s}/{d}_{s}_{t}.wav", _wav_bytes(sr=48000))
        for name, data in (extra or {}).items():
            z.writestr(name, data)
    return buf.getvalue()


def fsdd_zip(speakers=("jackson", "theo"), digits=range(3), takes=range(2), top="free-spoken-digit-dataset-1.0.10") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(f"{top}/README.md", "FSDD miniature")
        for s in speakers:
            for d in digits:
                for t in takes:
                    z.writestr(f"{top}/recordings/{d}_{s}_{t}.wav", _wav_bytes())
    return buf.getvalue()


class Server:
    "A tiny file server on 127.0.0.1 with Range support and fault injection."

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.requests: list[dict] = []
        self.cut_after: int | None = None     # bytes to send before dropping the next full response
        self.ignore_range = False
        srv = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a): pass

            def do_GET(self):
                rng = self.headers.get("Range")
                srv.requests.append({"path": self.path, "range": rng})
                data = srv.files.get(self.path)
                if data is None:
                    self.send_response(404); self.send_header("Content-Length", "0"); self.end_headers(); return
                start = 0
                if rng and not srv.ignore_range:
                    start = int(rng.split("=")[1].split("-")[0])
                    if start >= len(data):
                        self.send_response(416); self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0"); self.end_headers(); return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                if srv.cut_after is not None:
                    n, srv.cut_after = srv.cut_after, None
                    self.wfile.write(body[:n]); self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def close(self):
        self.httpd.shutdown(); self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


def _no_leftovers(folder: Path, keep=()):
    "Nothing but `keep` in `folder` (no temporary extraction folders, no .part files)."
    return sorted(p.name for p in folder.iterdir() if p.name not in keep) == []


# ---------------------------------------------------------------------------------- success

def test_fetch_audiomnist_success(server, tmp_path):
    server.files["/am.zip"] = audiomnist_zip()
    root = fetch_audiomnist(tmp_path / "AudioMNIST", url=server.url("/am.zip"), expect_wavs=12, expect_speakers=3)
    assert root == tmp_path / "AudioMNIST"
    c = read_audiomnist(root)
    assert len(c) == 12 and c.speakers == ["01", "02", "03"]
    assert sorted(set(c.labels("sex"))) == [0, 1] and c.name == "audiomnist"
    assert _no_leftovers(tmp_path, keep={"AudioMNIST"})          # archive removed, no temporaries
    # a second call finds the complete corpus and downloads nothing
    n = len(server.requests)
    assert fetch_audiomnist(root, url=server.url("/am.zip"), expect_wavs=12, expect_speakers=3) == root
    assert len(server.requests) == n


def test_fetch_fsdd_success(server, tmp_path):
    server.files["/fsdd.zip"] = fsdd_zip()
    root = fetch_fsdd(tmp_path / "fsdd", url=server.url("/fsdd.zip"), expect_wavs=12, expect_speakers=2)
    c = read_fsdd(root)
    assert len(c) == 12 and c.speakers == ["jackson", "theo"]
    assert all(x.sex is None for x in c.clips)


def test_keep_archive(server, tmp_path):
    server.files["/fsdd.zip"] = fsdd_zip()
    fetch_fsdd(tmp_path / "fsdd", url=server.url("/fsdd.zip"), expect_wavs=12, expect_speakers=2, keep_archive=True)
    assert (tmp_path / ".fsdd.zip").read_bytes() == server.files["/fsdd.zip"]


# ---------------------------------------------------------------------------------- resumption

def test_download_resumes_with_range(server, tmp_path):
    data = audiomnist_zip(speakers=("01", "02", "03", "04"), takes=range(5))
    server.files["/am.zip"] = data
    server.cut_after = len(data) // 3
    dest = tmp_path / "a.zip"
    with pytest.raises(DownloadError, match="call again to resume"):
        download(server.url("/am.zip"), dest)
    part = tmp_path / "a.zip.part"
    assert part.stat().st_size == len(data) // 3 and not dest.exists()
    download(server.url("/am.zip"), dest)
    assert dest.read_bytes() == data and not part.exists()
    assert server.requests[-1]["range"] == f"bytes={len(data) // 3}-"       # it asked only for the rest


def test_fetch_resumes_partial_download(server, tmp_path):
    data = audiomnist_zip()
    server.files["/am.zip"] = data
    server.cut_after = 500
    with pytest.raises(DownloadError):
        fetch_audiomnist(tmp_path / "am", url=server.url("/am.zip"), expect_wavs=12, expect_speakers=3)
    assert not (tmp_path / "am").exists()
    assert (tmp_path / ".am.zip.part").stat().st_size == 500
    fetch_audiomnist(tmp_path / "am", url=server.url("/am.zip"), expect_wavs=12, expect_speakers=3)
    assert server.requests[-1]["range"] == "bytes=500-"
    assert len(read_audiomnist(tmp_path / "am")) == 12


def test_server_ignoring_range_restarts(server, tmp_path):
    data = fsdd_zip()
    server.files["/f.zip"] = data
    (tmp_path / "f.zip.part").write_bytes(b"garbage that is not the start")
    server.ignore_range = True
    download(server.url("/f.zip"), tmp_path / "f.zip")
    assert (tmp_path / "f.zip").read_bytes() == data


def test_stale_part_longer_than_file(server, tmp_path):
    data = fsdd_zip()
    server.files["/f.zip"] = data
    (tmp_path / "f.zip.part").write_bytes(b"x" * (len(data) + 10))      # server answers 416
    download(server.url("/f.zip"), tmp_path / "f.zip")
    assert (tmp_path / "f.zip").read_bytes() == data


def test_http_error_is_clear(server, tmp_path):
    with pytest.raises(DownloadError, match="HTTP 404"):
        fetch_fsdd(tmp_path / "fsdd", url=server.url("/missing.zip"))
    assert not (tmp_path / "fsdd").exists()


# ---------------------------------------------------------------------------------- bad archives

@pytest.mark.parametrize("member", ["../escape.txt", "AudioMNIST-abc/data/../../../escape.txt", "/tmp/axk-absolute.txt"])
def test_archive_escaping_folder_is_refused(server, tmp_path, member):
    server.files["/evil.zip"] = audiomnist_zip(extra={member: "pwned"})
    with pytest.raises(DataError, match="refusing to extract"):
        fetch_audiomnist(tmp_path / "sub" / "am", url=server.url("/evil.zip"), expect_wavs=12, expect_speakers=3)
    assert not (tmp_path / "escape.txt").exists() and not (tmp_path / "sub" / "escape.txt").exists()
    assert not (tmp_path / "sub" / "am").exists()
    assert _no_leftovers(tmp_path / "sub")                                # bad archive deleted too


def test_archive_symlink_is_refused(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        info = zipfile.ZipInfo("top/data/link")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        z.writestr(info, "/etc/passwd")
    (tmp_path / "l.zip").write_bytes(buf.getvalue())
    with pytest.raises(DataError, match="symbolic link"):
        safe_extract(tmp_path / "l.zip", tmp_path / "out")
    assert not (tmp_path / "out" / "top" / "data" / "link").exists()


def test_not_a_zip(server, tmp_path):
    server.files["/x.zip"] = b"<html>rate limited</html>"
    with pytest.raises(DataError, match="not a readable zip archive"):
        fetch_fsdd(tmp_path / "fsdd", url=server.url("/x.zip"))


def test_wrong_content_count(server, tmp_path):
    server.files["/am.zip"] = audiomnist_zip()                             # 12 wavs, 3 speakers
    with pytest.raises(DataError, match="holds 12 AudioMNIST recordings of 3 speakers; expected 30000 of 60"):
        fetch_audiomnist(tmp_path / "am", url=server.url("/am.zip"))
    assert not (tmp_path / "am").exists() and _no_leftovers(tmp_path)
    server.files["/f.zip"] = fsdd_zip()
    with pytest.raises(DataError, match="expected 3000 of 6"):
        fetch_fsdd(tmp_path / "fsdd", url=server.url("/f.zip"))


def test_meta_missing_speaker_in_archive(server, tmp_path):
    server.files["/am.zip"] = audiomnist_zip(meta_skip=("03",))
    with pytest.raises(DataError, match=r"no entry for speakers \['03'\]"):
        fetch_audiomnist(tmp_path / "am", url=server.url("/am.zip"), expect_wavs=12, expect_speakers=3)


def test_existing_incomplete_root_is_left_alone(server, tmp_path):
    (tmp_path / "am").mkdir(); (tmp_path / "am" / "mine.txt").write_text("user data")
    server.files["/am.zip"] = audiomnist_zip()
    with pytest.raises(DataError, match="exists but is not a complete"):
        fetch_audiomnist(tmp_path / "am", url=server.url("/am.zip"), expect_wavs=12, expect_speakers=3)
    assert (tmp_path / "am" / "mine.txt").read_text() == "user data" and server.requests == []


# ---------------------------------------------------------------------------------- sha256

def test_sha256_right_and_wrong(server, tmp_path):
    data = fsdd_zip()
    server.files["/f.zip"] = data
    good = hashlib.sha256(data).hexdigest()
    with pytest.raises(DownloadError, match="SHA-256 is"):
        fetch_fsdd(tmp_path / "bad", url=server.url("/f.zip"), sha256="0" * 64, expect_wavs=12, expect_speakers=2)
    assert not (tmp_path / "bad").exists() and not (tmp_path / ".bad.zip.part").exists()
    root = fetch_fsdd(tmp_path / "good", url=server.url("/f.zip"), sha256=good.upper(), expect_wavs=12, expect_speakers=2)
    assert len(read_fsdd(root)) == 12
