"""The shell every command runs in (hmmn_ref/shell.py) and the exit statuses it applies
(hmmn_ref/errors.py): one map for all commands, the program's own name on each line."""

from __future__ import annotations

import ast
import errno
import signal
import tomllib
from pathlib import Path

import pytest

from hmmn_ref import shell
from hmmn_ref.errors import Exit, HMMNError, UsageError, exit_code
from hmmn_deploy.export.onnx_export import ExportError
from hmmn_deploy.segment.sources import InputError

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("exc, code", [
    (HMMNError("x"), 2),
    (UsageError("x"), 2),
    (InputError("x"), 2),
    (ExportError("x"), 1),  # the options were right, the graph's export failed
    (ValueError("x"), 2),
    (FileNotFoundError(errno.ENOENT, "No such file or directory", "f.png"), 2),
    (KeyboardInterrupt(), 130),
])
def test_the_map_gives_each_error_its_status(exc, code):
    assert exit_code(exc) == code


def test_an_interrupt_by_another_signal_is_128_plus_it():
    assert exit_code(KeyboardInterrupt(), signal.SIGTERM) == 143
    assert exit_code(KeyboardInterrupt(), signal.SIGHUP) == 129


def test_a_bug_has_no_status():
    assert exit_code(RuntimeError("a bug")) is None
    assert exit_code(TypeError("a bug")) is None


def run_logged(body, **options):
    lines = []
    code = shell.run(body, shell.Logger("hmmn-x", lines.append), **options)
    return code, lines


def raises(exc):
    def body():
        raise exc
    return body


def test_run_returns_the_bodys_status_and_logs_nothing_of_its_own():
    assert run_logged(lambda: Exit.FAILED) == (1, [])


def test_an_error_is_one_line_with_the_programs_name_and_the_maps_status():
    assert run_logged(raises(InputError("no frames in 'x'"))) == (2, ["hmmn-x: error: no frames in 'x'"])
    assert run_logged(raises(ExportError("torch could not export match"))) == (
        1, ["hmmn-x: error: torch could not export match"])


def test_an_os_error_says_its_reason_and_file_not_its_errno():
    code, lines = run_logged(raises(FileNotFoundError(errno.ENOENT, "No such file or directory", "a.png")))
    assert (code, lines) == (2, ["hmmn-x: error: No such file or directory (a.png)"])


def test_ctrl_c_is_one_line_and_130():
    assert run_logged(raises(KeyboardInterrupt())) == (130, ["hmmn-x: interrupted"])
    assert run_logged(raises(KeyboardInterrupt()), interrupted=lambda: "interrupted; nothing written") == (
        130, ["hmmn-x: interrupted; nothing written"])


def test_a_bug_keeps_its_traceback():
    with pytest.raises(ZeroDivisionError):
        run_logged(lambda: 1 // 0)


def test_detail_lines_go_out_as_they_are():
    lines = []
    log = shell.Logger("hmmn-x", lines.append)
    log("message")
    log.detail("  a table row")
    shell.detail(log, "  another")
    shell.detail(lines.append, "  through a plain function")
    assert lines == ["hmmn-x: message", "  a table row", "  another", "  through a plain function"]


def commands() -> dict:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]["scripts"]


def module_file(target: str) -> Path:
    module = target.split(":")[0].split(".")
    parts = module[1:] if module[0] == "hmmn_deploy" else module
    return ROOT.joinpath(*parts).with_suffix(".py")


@pytest.mark.parametrize("command", sorted(commands()))
def test_every_command_runs_in_the_shell_under_its_own_name(command):
    """Its main() hands its work to shell.run (or shell.main, which parses and runs), and its parser
    and Logger carry its name."""
    target = commands()[command]
    tree = ast.parse(module_file(target).read_text())
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
             and isinstance(node.func.value, ast.Name) and node.func.value.id == "shell"]
    named = {node.func.attr for node in calls if node.args and isinstance(node.args[0], ast.Constant)
             and node.args[0].value == command}
    assert {"Logger", "parser"} <= named, f"{command}: shell.Logger({command!r}) and shell.parser({command!r})"
    main = next(node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "main")
    assert any(isinstance(n, ast.Call) and ast.unparse(n.func) in ("shell.run", "shell.main")
               for n in ast.walk(main)), command


def test_main_parses_then_runs_the_body_in_the_shell():
    import argparse

    lines = []
    log = shell.Logger("hmmn-x", lines.append)

    def build_parser():
        p = argparse.ArgumentParser()
        p.add_argument("--n", type=int, default=1)
        return p

    assert shell.main(build_parser, lambda args: args.n, log, ["--n", "3"]) == 3
    assert shell.main(build_parser, lambda args: raises(InputError("bad"))(), log, []) == 2 and lines == ["hmmn-x: error: bad"]
