"""``duomo synth`` through the CLI entry point, in process."""

from __future__ import annotations

import json

from duomo.cli.main import main


def test_synth_writes_videos_and_manifest(tmp_path, capsys):
    out = tmp_path / "world"
    code = main(["synth", str(out), "--videos", "4", "--seed", "2", "--size", "64", "--fps", "8",
                 "--max-duration", "3", "--split", "compositional", "--workers", "1"])
    assert code == 0
    rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == ["v0000", "v0001", "v0002", "v0003"]
    assert all((out / r["video"]).is_file() for r in rows)
    printed = capsys.readouterr().out
    assert "wrote 4 videos" in printed and "QA families" in printed


def test_bad_arguments_get_a_one_line_error(tmp_path, capsys):
    assert main(["synth", str(tmp_path / "w"), "--videos", "2", "--size", "8"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--size" in err[0]
    (tmp_path / "file").write_text("x")
    assert main(["synth", str(tmp_path / "file"), "--videos", "1"]) == 2
    assert "not a folder" in capsys.readouterr().err
