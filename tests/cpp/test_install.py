"""`cmake --install` of cpp/ into a temporary prefix, then the C example (cpp/examples/minimal.c)
built against the installed tree with find_package(hmmn) and with pkg-config, and run; the
GStreamer plugin found in the prefix's gstreamer-1.0 folder."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from test_cpp import CPP, RELEASE, _build, gstreamer_dev

CONSUMER = """cmake_minimum_required(VERSION 3.16)
project(consumer C)
find_package(hmmn 0.1 REQUIRED)
add_executable(minimal {example})
target_link_libraries(minimal PRIVATE hmmn::hmmn)
"""


@pytest.fixture(scope="module")
def prefix(tmp_path_factory):
    build = _build("pytest-release", *RELEASE)
    out = tmp_path_factory.mktemp("hmmn_prefix")
    done = subprocess.run(["cmake", "--install", str(build), "--prefix", str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    return out


def _run_example(program, export) -> None:
    done = subprocess.run([str(program), str(export)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert sum(line.startswith("frame ") for line in done.stdout.splitlines()) == 3, done.stdout


def test_installed_tree(prefix):
    lib = next(p for p in (prefix / "lib", prefix / "lib64") if p.is_dir())
    assert (prefix / "include" / "hmmn" / "hmmn.h").is_file()
    assert (lib / "libhmmn.so").exists() and (lib / "libhmmn.a").is_file()
    assert (lib / "cmake" / "hmmn" / "hmmnConfig.cmake").is_file() and (lib / "pkgconfig" / "hmmn.pc").is_file()


def test_c_example_with_find_package(prefix, small_export, tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "CMakeLists.txt").write_text(CONSUMER.format(example=CPP / "examples" / "minimal.c"))
    for command in (["cmake", "-S", str(tmp_path / "src"), "-B", str(tmp_path / "build"),
                     f"-DCMAKE_PREFIX_PATH={prefix}"],
                    ["cmake", "--build", str(tmp_path / "build")]):
        done = subprocess.run(command, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
    _run_example(tmp_path / "build" / "minimal", small_export)


def test_c_example_with_pkg_config(prefix, small_export, tmp_path):
    if not shutil.which("pkg-config"):
        pytest.skip("pkg-config is not installed")
    lib = next(p for p in (prefix / "lib", prefix / "lib64") if p.is_dir())
    env = dict(os.environ, PKG_CONFIG_PATH=str(lib / "pkgconfig"))
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "hmmn"], capture_output=True, text=True, env=env)
    assert flags.returncode == 0 and str(prefix) in flags.stdout, flags.stderr
    libdir = subprocess.run(["pkg-config", "--variable=libdir", "hmmn"], capture_output=True, text=True,
                            env=env).stdout.strip()
    compiler = shutil.which("cc") or shutil.which("gcc")
    program = tmp_path / "minimal"
    done = subprocess.run([compiler, str(CPP / "examples" / "minimal.c"), "-o", str(program), *flags.stdout.split(),
                           f"-Wl,-rpath,{libdir}"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    _run_example(program, small_export)


def test_gstreamer_plugin_installed(prefix, tmp_path):
    if not gstreamer_dev() or not shutil.which("gst-inspect-1.0"):
        pytest.skip("GStreamer is not installed: the plugin was not built")
    plugins = next(p for p in (prefix / "lib", prefix / "lib64") if p.is_dir()) / "gstreamer-1.0"
    assert (plugins / "libgsthmmn.so").is_file()
    env = dict(os.environ, GST_PLUGIN_PATH=str(plugins), GST_REGISTRY=str(tmp_path / "registry.bin"))
    done = subprocess.run(["gst-inspect-1.0", "hmmnseg"], capture_output=True, text=True, env=env)
    assert done.returncode == 0 and str(plugins) in done.stdout, done.stdout + done.stderr
