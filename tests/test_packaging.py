"""The installed import names: an editable install and a built wheel both import and run."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]

SMOKE = """
import sys, torch, hmmn_ref, hmmn_deploy.export, hmmn_deploy.runtime, hmmn_deploy.segment
site = sys.argv[1]
for mod in (hmmn_ref, hmmn_deploy.export, hmmn_deploy.runtime, hmmn_deploy.segment):
    assert mod.__file__.startswith(site), (mod.__name__, mod.__file__)
from hmmn_ref.sample_video import make_sample_video
frames, labels = make_sample_video(num_frames=3, height=64, width=64)
model = hmmn_ref.fill_golden_weights(hmmn_ref.HMMN(hmmn_ref.SMALL))
out = hmmn_ref.run_video(model, torch.from_numpy(frames).permute(0, 3, 1, 2) / 255.0, torch.from_numpy(labels[0]).long())
print("wheel ok", tuple(out.shape))
"""


def test_editable_install_maps_folders_under_one_namespace():
    import hmmn_deploy.export
    import hmmn_deploy.runtime
    import hmmn_deploy.segment
    import hmmn_ref

    assert pathlib.Path(hmmn_ref.__file__).parent == ROOT / "hmmn_ref"
    assert pathlib.Path(hmmn_deploy.export.__file__).parent == ROOT / "export"
    assert pathlib.Path(hmmn_deploy.runtime.__file__).parent == ROOT / "runtime"
    assert pathlib.Path(hmmn_deploy.segment.__file__).parent == ROOT / "segment"


def test_built_wheel_imports_and_runs(tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(wheels), str(ROOT)],
        check=True,
    )
    (wheel,) = wheels.glob("hmmn_deploy-*.whl")
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site), str(wheel)],
        check=True,
    )
    env = dict(os.environ, PYTHONPATH=str(site))
    result = subprocess.run(
        [sys.executable, "-c", SMOKE, str(site)], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "wheel ok (2, 3, 64, 64)" in result.stdout
