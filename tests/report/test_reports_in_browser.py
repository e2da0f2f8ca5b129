"""hmmn-eval's and hmmn-bench's HTML reports opened in real headless Chromium (Debian's chromium and
chromium-driver, PyPI's selenium): every image and plot loads, and every overlay video plays
(its duration is the video's, readyState reaches 4). The same check fails on the MPEG-4 Part 2
overlay hmmn-run wrote before (OpenCV's mp4v), and on a broken plot.

Skipped only where Chromium or its driver is not installed (.ci/run installs both).
"""

from __future__ import annotations

import base64
import json
import pathlib
import re
import shutil
import tempfile
import time

import numpy as np
import pytest

from hmmn_deploy.bench import cli as bench_cli
from hmmn_deploy.demo.synthetic import write_davis
from hmmn_deploy.evaluate import cli as eval_cli
from hmmn_deploy.segment import cli as run_cli

FRAMES, H, W, FPS = 6, 64, 96, 10.0  # hmmn-run's overlay of a frame folder runs at 10 frames/s
MODEL = ["--backend", "torch", "--random-weights", "--config", "small", "--no-progress", "--threads", "1"]
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--window-size=1200,900")
WAIT = 20.0  # seconds a video may take to load


@pytest.fixture(scope="module")
def browser():
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.skip("Chromium is not installed (apt-get install chromium chromium-driver; .ci/run does)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="hmmn-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS + (f"--user-data-dir={profile}",):
        options.add_argument(flag)
    session = webdriver.Chrome(service=Service(driver), options=options)
    try:
        yield session
    finally:
        session.quit()
        shutil.rmtree(profile, ignore_errors=True)


def page_problems(browser, index: pathlib.Path, videos: dict) -> list:
    """Open the page; -> what did not load: images with no pixels, videos that do not play or
    whose duration is not the file's. `videos`: {src relative to the page: duration in s}."""
    browser.get(index.resolve().as_uri())
    problems = []
    images = browser.execute_script(
        "return Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth]);")
    problems += [f"image {alt!r} did not load" for alt, complete, width in images if not (complete and width > 0)]
    found = browser.execute_script("return Array.from(document.querySelectorAll('video')).map(v => v.getAttribute('src'));")
    problems += [f"video {src!r} is not on the page" for src in videos if src not in found]
    for i, src in enumerate(found):
        state = video_state(browser, i)
        if state["error"] is not None or state["readyState"] != 4:
            problems.append(f"video {src!r} does not play: readyState {state['readyState']}, error {state['error']}")
        elif src in videos and abs(state["duration"] - videos[src]) > 0.5 / FPS:
            problems.append(f"video {src!r} lasts {state['duration']} s, the file {videos[src]} s")
    return problems


def video_state(browser, i: int) -> dict:
    """The i-th <video>'s readyState, duration and error code, once it can play through or failed."""
    script = ("const v = document.querySelectorAll('video')[arguments[0]];"
              "return {readyState: v.readyState, duration: v.duration, error: v.error && v.error.code};")
    deadline = time.monotonic() + WAIT
    while True:
        state = browser.execute_script(script, i)
        if state["readyState"] == 4 or state["error"] is not None or time.monotonic() > deadline:
            return state
        time.sleep(0.1)


def file_duration(path: pathlib.Path) -> float:
    import av

    with av.open(str(path)) as container:
        return container.duration / 1e6


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A DAVIS-layout dataset and two hmmn-run outputs of it, with overlays."""
    root = tmp_path_factory.mktemp("browser")
    davis = root / "davis"
    write_davis(str(davis), [("one", 31), ("two", 32)], FRAMES, H, W, "val")
    outs = [root / "run_a", root / "run_b"]
    assert run_cli.main([str(davis), "-o", str(outs[0]), "--overlay"] + MODEL) == 0
    assert run_cli.main([str(davis), "-o", str(outs[1]), "--overlay", "--mem-every", "2"] + MODEL) == 0
    return davis, outs


def test_the_eval_report_shows_its_plots_thumbnails_and_playing_overlays(browser, runs, tmp_path, capsys):
    davis, (out, _) = runs
    report = tmp_path / "report"
    assert eval_cli.main(["--gt", str(davis), "--pred", str(out), "--report", str(report)]) == 0
    assert f"report written: {report / 'index.html'}" in capsys.readouterr().err
    videos = {f"media/0_{n}.mp4": file_duration(out / "overlays" / f"{n}.mp4") for n in ("one", "two")}
    assert all(abs(d - FRAMES / FPS) < 0.5 / FPS for d in videos.values())
    assert page_problems(browser, report / "index.html", videos) == []
    text = (report / "index.html").read_text()
    assert "http://" not in text and "https://" not in text  # nothing from the network
    # per sequence: a J-per-frame plot and three worst-frame thumbnails; the posters load too
    assert len(re.findall(r'<img class="plot"', text)) == 2 and len(re.findall(r'<img class="thumb"', text)) == 6
    assert browser.execute_script("return Array.from(document.querySelectorAll('video')).every(v => v.poster)")
    jf = json.loads(json_of(davis, out, tmp_path))["J&F"]
    assert f"<td>{jf:.2f}</td>" in text


def json_of(davis, out, tmp_path) -> str:
    path = tmp_path / "result.json"
    assert eval_cli.main(["--gt", str(davis), "--pred", str(out), "--json", str(path)]) == 0
    return path.read_text()


def test_the_comparison_report_puts_the_runs_side_by_side(browser, runs, tmp_path):
    davis, outs = runs
    report = tmp_path / "compare"
    assert eval_cli.main(["--compare", *map(str, outs), "--gt", str(davis), "--report", str(report)]) == 0
    videos = {f"media/{i}_{n}.mp4": FRAMES / FPS for i in (0, 1) for n in ("one", "two")}
    assert page_problems(browser, report / "index.html", videos) == []
    agreement, scores = browser.execute_script(
        "return Array.from(document.querySelectorAll('h2#one ~ table')).slice(0, 2).map(t => t.innerText)")
    assert "pixels equal %" in agreement and "run_b (torch fp32)" in agreement
    assert "J&F run_a (torch fp32)" in scores and "J&F run_b (torch fp32)" in scores


def test_the_check_fails_on_an_mpeg4_part2_overlay_and_on_a_broken_plot(browser, runs, tmp_path):
    import cv2

    davis, (out, _) = runs
    report = tmp_path / "report"
    assert eval_cli.main(["--gt", str(davis), "--pred", str(out), "--report", str(report)]) == 0
    # hmmn-run's overlay as OpenCV wrote it before: mp4v, which Chromium does not play
    old = cv2.VideoWriter(str(report / "media/0_one.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (W, H))
    for t in range(FRAMES):
        old.write(np.full((H, W, 3), 40 * t, dtype=np.uint8))
    old.release()
    problems = page_problems(browser, report / "index.html", {"media/0_one.mp4": FRAMES / FPS})
    assert len(problems) == 1 and "media/0_one.mp4" in problems[0] and "does not play" in problems[0], problems
    page = report / "index.html"
    text = page.read_text()
    broken = "data:image/png;base64," + base64.b64encode(b"not a PNG").decode()
    page.write_text(re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", broken, text, count=1))
    problems = page_problems(browser, page, {})
    assert any("J per frame of one" in p and "did not load" in p for p in problems), problems


def test_the_bench_report_shows_every_plot_and_the_machine(browser, small_export, tmp_path, capsys):
    report = tmp_path / "bench"
    # the export's graphs give the FLOP counts that the % of peak needs
    assert bench_cli.main(["--artifacts", str(small_export), "--backend", "onnxruntime", "--size", "64x96",
                           "--frames", "1", "--warmup", "0", "--compare", "--no-probe", "--threads", "1",
                           "--scaling", str(tmp_path / "scaling"), "--scaling-sizes", "64x96",
                           "--json", "--report", str(report)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert page_problems(browser, report / "index.html", {}) == []
    alts = browser.execute_script("return Array.from(document.images).map(i => i.alt)")
    assert alts == ["frames per second", "time per stage", "% of peak", "scaling curves"]
    body = browser.execute_script("return document.body.innerText")
    assert result["machine"]["torch"] in body and result["machine"]["cpu"] in body
    assert f"{result['ratios']['onnxruntime fp32']:.2f}x" in body
