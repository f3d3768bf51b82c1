"""``duomo serve`` as a user runs it: its options, one-line errors for a bad --db or --model,
and (slow) a real server process bound to 127.0.0.1 that asks for the token from --token or
$DUOMO_TOKEN."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from duomo.cli.main import main
from tests.cli.test_cli import duomo
from tests.helpers.serving import free_port


def test_serve_help_names_its_options_and_safe_defaults():
    result = duomo("serve", "--help")
    assert result.returncode == 0
    for option in ("--db", "--host", "--port", "--model", "--token", "--max-upload-mb"):
        assert option in result.stdout
    assert "127.0.0.1" in result.stdout and "DUOMO_TOKEN" in result.stdout
    assert "    serve " in duomo("--help").stdout


def test_bad_db_or_model_is_one_line(tmp_path: Path, capsys):
    not_a_folder = tmp_path / "file.txt"
    not_a_folder.write_text("x")
    assert main(["serve", "--db", str(not_a_folder)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"duomo serve: error: {not_a_folder}: --db must be a library folder, not a file"
    assert main(["serve", "--db", str(tmp_path / "db"), "--model", str(tmp_path / "no-run")]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"duomo serve: error: {tmp_path / 'no-run'}: not a finished run folder (no config.yaml)"
    assert not (tmp_path / "db").exists()  # nothing created before the model was refused


@pytest.mark.slow
@pytest.mark.parametrize("how", ["flag", "env"])
def test_server_process_needs_the_token(tmp_path: Path, how: str):
    import httpx

    port = free_port()
    args = [sys.executable, "-m", "duomo.cli.main", "serve", "--db", str(tmp_path / "db"), "--port", str(port)]
    env = dict(os.environ)
    if how == "flag":
        args += ["--token", "abc"]
    else:
        env["DUOMO_TOKEN"] = "abc"
    server = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, server.stderr.read().decode()
            try:
                refused = httpx.get(base + "/api/videos", timeout=2)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        assert refused.status_code == 401
        assert httpx.get(base + "/api/videos", headers={"Authorization": "Bearer abc"}).json() == []
        assert httpx.get(base + "/").status_code == 200  # the page shell, which asks for the token
        assert (tmp_path / "db" / "library.json").is_file()  # an empty library was created
    finally:
        server.terminate()
        server.wait(30)
