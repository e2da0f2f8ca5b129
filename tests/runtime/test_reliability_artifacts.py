"""hmmn-run --artifacts loads only what the export validated (issue 19, case 5), and ONNX
Runtime's own errors on a broken graph become one line (case 6): exit 2, no traceback."""

from __future__ import annotations

import json
import shutil

import numpy as np
import onnx
from PIL import Image

from hmmn_deploy.export import manifest
from hmmn_deploy.segment import cli
from hmmn_ref.media import davis_palette
from hmmn_ref.sample_video import make_sample_video


def clip(root):
    video, labels = make_sample_video(3, 96, 128, num_objects=2, seed=3)
    (root / "clip").mkdir()
    for t in range(3):
        Image.fromarray(video[t]).save(root / "clip" / f"{t:05d}.png")
    image = Image.fromarray(labels[0].astype(np.uint8))
    image.putpalette(davis_palette())
    image.save(root / "first.png")
    return root / "clip", root / "first.png"


def run(frames, mask, artifacts, out) -> int:
    return cli.main([str(frames), "--mask", str(mask), "--artifacts", str(artifacts), "-o", str(out),
                     "--no-progress"])


def test_edited_truncated_or_broken_graphs_are_refused_with_one_line(small_export, tmp_path, capsys):
    frames, mask = clip(tmp_path)
    folder = tmp_path / "export"
    shutil.copytree(small_export, folder)
    assert run(frames, mask, folder, tmp_path / "ok") == 0
    capsys.readouterr()

    # Edited in place (same size, other weights): it used to run with different masks.
    model = onnx.load(str(folder / "decode.onnx"))
    init = model.graph.initializer[0]
    init.raw_data = bytes(len(init.raw_data))
    onnx.save(model, str(folder / "decode.onnx"))
    assert run(frames, mask, folder, tmp_path / "edited") == 2
    err = capsys.readouterr().err
    assert "decode.onnx" in err and "differs from the file the export validated" in err and "Traceback" not in err

    # Truncated: it used to end in a traceback and exit 1.
    data = (small_export / "decode.onnx").read_bytes()
    (folder / "decode.onnx").write_bytes(data[: len(data) // 3])
    assert run(frames, mask, folder, tmp_path / "truncated") == 2
    err = capsys.readouterr().err
    assert "truncated" in err and "Traceback" not in err

    # A broken graph whose manifest entry was rewritten to match: ONNX Runtime's own error, in one line.
    record = json.loads((folder / "manifest.json").read_text())
    record["graphs"]["decode"].update(manifest.file_entry(str(folder), "decode.onnx"))
    (folder / "manifest.json").write_text(json.dumps(record))
    assert run(frames, mask, folder, tmp_path / "broken") == 2
    err = capsys.readouterr().err
    assert "ONNX Runtime cannot load" in err and "decode.onnx" in err and "Traceback" not in err
    assert not (tmp_path / "broken" / "clip").exists()
