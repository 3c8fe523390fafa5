"""The `audio-xai-kit` command line, run as a user runs it: a subprocess of the installed script."""
import os
import shutil
import subprocess
import sys

import pytest

EXE = shutil.which("audio-xai-kit") or ""


def cli(*args, root=None, check=True):
    env = dict(os.environ, AUDIO_XAI_KIT_PROGRESS="0")
    cmd = [EXE, *args] if EXE else [sys.executable, "-m", "audio_xai_kit.cli", *args]
    if root is not None:
        cmd[1:1] = ["--root", str(root)]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    if check:
        assert r.returncode == 0, f"{cmd} exited {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r


def test_script_is_installed():
    assert EXE, "the console script audio-xai-kit is not on PATH: is the package installed (pip install -e .)?"


def test_help_lists_commands():
    out = cli("--help").stdout
    for word in ("data", "tour"):
        assert word in out


@pytest.mark.parametrize("args", [("data", "info", "/no/such/folder"), ("data", "fetch", "nosuch")])
def test_user_mistakes_are_one_line_not_a_traceback(args):
    r = cli(*args, check=False)
    assert r.returncode == 2, r
    assert "Traceback" not in r.stderr, r.stderr
    assert r.stderr.strip(), "a mistake must be explained on stderr"


def test_empty_folder_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    r = cli("data", "info", str(tmp_path / "empty"), check=False)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert str(tmp_path / "empty") in r.stderr


def test_synth_then_info_and_no_silent_overwrite(tmp_path):
    r = cli("data", "synth", "--speakers", "2", "--takes", "1", root=tmp_path)
    assert "20 clips" in r.stdout, r.stdout
    assert (tmp_path / "synth-digits" / "audioMNIST_meta.txt").exists()
    info = cli("data", "info", str(tmp_path / "synth-digits")).stdout
    assert "20 clips" in info and "female" in info and "male" in info, info
    # a second synth with the same settings reads the corpus back instead of overwriting it
    again = cli("data", "synth", "--speakers", "2", "--takes", "1", root=tmp_path)
    assert "20 clips" in again.stdout
    # other settings on existing data: refused unless --overwrite
    clash = cli("data", "synth", "--speakers", "4", "--takes", "1", root=tmp_path, check=False)
    assert clash.returncode == 2 and "Traceback" not in clash.stderr, clash.stderr
