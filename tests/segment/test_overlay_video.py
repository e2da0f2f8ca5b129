"""hmmn-run's overlay video (segment/overlay_video.py): H.264 that decodes back frame for frame,
odd sizes padded to even, a video cut short refused, and the poster beside it. Whether a browser
plays it: tests/report/test_browser.py."""

from __future__ import annotations

import numpy as np
import pytest

from hmmn_deploy.segment import overlay_video
from hmmn_deploy.segment.writer import SequenceWriter


def frames(count: int, h: int, w: int) -> list:
    rng = np.random.default_rng(3)
    return [rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8) for _ in range(count)]


def write(path, clip, fps=10.0, encoder=None) -> None:
    video = overlay_video.OverlayVideo(str(path), fps, (clip[0].shape[1], clip[0].shape[0]), encoder)
    for frame in clip:
        video.write(frame)
    video.release()


@pytest.mark.parametrize("encoder", overlay_video.ENCODERS)
def test_every_frame_decodes_back_with_the_codec_browsers_play(tmp_path, encoder):
    path = tmp_path / "v.mp4"
    write(path, frames(7, 48, 64), encoder=encoder)
    count, codec = overlay_video.count_frames(str(path))
    assert count == 7 and codec == {"libx264": "h264", "libvpx-vp9": "vp9"}[encoder]
    overlay_video.check_video(str(path), 7)


def test_the_default_encoder_is_h264_and_the_colours_survive(tmp_path):
    import av

    assert overlay_video.available_encoder() == "libx264"  # PyPI's PyAV wheels carry x264
    flat = [np.full((32, 48, 3), (200, 40, 90), dtype=np.uint8)] * 3
    path = tmp_path / "flat.mp4"
    write(path, flat)
    with av.open(str(path)) as container:
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(decoded) == 3 and np.abs(decoded[1].astype(int) - flat[0]).max() <= 6  # yuv420p rounding


def test_an_odd_size_is_padded_to_even(tmp_path):
    import av

    path = tmp_path / "odd.mp4"
    write(path, frames(3, 45, 67))
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.height, stream.codec_context.width) == (46, 68)
    assert overlay_video.count_frames(str(path))[0] == 3


def test_a_video_cut_short_or_missing_is_refused(tmp_path):
    path = tmp_path / "v.mp4"
    write(path, frames(6, 32, 32))
    with pytest.raises(OSError, match="holds 6 of its 8 frames"):
        overlay_video.check_video(str(path), 8)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])  # cut short by a full disk
    with pytest.raises(OSError, match="of its 6 frames"):
        overlay_video.check_video(str(path), 6)
    with pytest.raises(OSError, match="holds 0 of its 6"):
        overlay_video.check_video(str(tmp_path / "absent.mp4"), 6)


def test_the_sequence_writer_leaves_a_checked_video_and_its_poster(tmp_path):
    palette = [0, 0, 0, 200, 0, 0] + [0] * 762
    writer = SequenceWriter(str(tmp_path), palette, overlay=True, fps=5)
    clip = frames(4, 40, 56)
    for t, frame in enumerate(clip):
        labels = np.zeros((40, 56), np.uint8)
        labels[10:30, 10 + t: 30 + t] = 1
        writer.put(f"{t:05d}", labels, frame)
    writer.close()
    writer.check_outputs()
    from PIL import Image

    with Image.open(tmp_path / "overlay.png") as poster:
        assert poster.size == (56, 40)
        # the poster is the last frame drawn: its object's outline is the palette's red
        assert tuple(np.array(poster.convert("RGB"))[29, 20]) == (200, 0, 0)  # bottom edge, t = 3
    (tmp_path / "overlay.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    with pytest.raises(OSError, match="poster"):
        writer.check_outputs()
