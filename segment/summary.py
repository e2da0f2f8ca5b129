"""OUT/summary.json: the run's settings and a record per sequence that agrees with the disk.

A sequence is "done" exactly when its mask folder OUT/<seq> is there with hmmn-run's record
(see ownership). Each write reconciles the records with the folder: a published sequence whose
record is missing or is another run's (a record lost, a summary.json deleted, a publish
finished after a crash) gets the one published with its masks; a "done" record whose masks
are gone is dropped; a forced redo that failed keeps the finished record it would have
replaced, with the error as "redo_error". Folders hmmn-run did not write are not recorded.
"""

from __future__ import annotations

import json
import os
import resource
import time
from typing import Callable, Optional

from .ownership import inspect, owned_sequences

NAME = "summary.json"


def load_summary(out: str, log: Callable[[str], None]) -> dict:
    path = os.path.join(out, NAME)
    if os.path.isfile(path):
        try:
            with open(path) as f:
                data = json.load(f)
            if isinstance(data, dict):
                return data
        except (OSError, ValueError):
            pass
        log(f"{path} is not a JSON summary; starting a new one from the sequences on disk")
    return {}


def failed_record(out: str, name: str, error: str, previous: Optional[dict]) -> dict:
    """The record of a sequence whose run failed now: what is still published stays done."""
    if inspect(out, name, hashes=False).ours and previous and previous.get("status") == "done":
        return {**previous, "redo_error": error}
    return {"status": "failed", "error": error}


def record_done(records: dict, name: str, record: dict, log: Callable[[str], None], where: str = "") -> None:
    """A sequence finished: its record, its line and its warnings (hmmn-run and its Ray driver)."""
    records[name] = record
    resized = record.get("processing_size") not in (None, record.get("size"))
    at = " at {}x{} (masks at {}x{})".format(*record["processing_size"], *record["size"]) if resized else ""
    log(f"{name}: {record['frames']} frames{at}, objects {record['objects']}, {record['fps']} frames/s "
        f"(model{where}), skipped {len(record['skipped_frames'])}")
    for warning in record["warnings"]:
        log(f"{name}: WARNING: {warning} (--strict makes this an error)")


def record_failed(out: str, records: dict, name: str, error: str, log: Callable[[str], None]) -> None:
    """A sequence failed: its record (what is still published stays done) and its line."""
    records[name] = failed_record(out, name, error, records.get(name))
    kept = " (its previous outputs are kept)" if records[name].get("status") == "done" else ""
    log(f"{name}: FAILED: {error}{kept}")


def reconcile(out: str, summary: dict) -> None:
    records = summary.setdefault("sequences", {})
    on_disk = owned_sequences(out)  # name -> the record published with its masks
    for name in list(records):
        done = records[name].get("status") == "done"
        if done and name not in on_disk:
            del records[name]
    for name in sorted(on_disk):
        record = records.get(name, {})
        published = on_disk[name].get("record") or {}
        if (record.get("status") != "done" or record.get("run_id") != on_disk[name]["run_id"]
                or record.get("frames") != published.get("frames")):
            records[name] = {**published, "status": "done", "run_id": on_disk[name]["run_id"],
                             "note": "found on disk: the record published with its masks"}
            if record.get("error"):
                records[name]["redo_error"] = record["error"]


def write_summary(out: str, summary: dict) -> None:
    """Reconcile, total the done sequences, write atomically. OSError (disk full, say) leaves
    the previous summary.json as it was and no temporary file."""
    reconcile(out, summary)
    done = [r for r in summary["sequences"].values() if r.get("status") == "done"]
    timed = [r for r in done if r.get("model_seconds")]
    seconds = sum(r["model_seconds"] for r in timed)
    stepped = sum(r.get("model_frames", r["frames"] - 1) for r in timed)  # records of older runs lack it
    summary.update({
        "frames": sum(r["frames"] for r in done), "fps": round(stepped / seconds, 4) if seconds else None,
        "peak_host_memory_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "peak_device_memory_mb": _device_peak_mb(), "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    })
    path = os.path.join(out, NAME)
    tmp = os.path.join(out, f".{NAME}.tmp")
    try:
        with open(tmp, "w") as f:
            json.dump(summary, f, indent=2)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def closing_line(done: str, failed: int, saved: bool, records: list, per: str) -> str:
    """The run's last line: its frames and rate are this run's (not of sequences skipped as done);
    summary.json is pointed to only when it was written (hmmn-run and its Ray driver)."""
    frames = sum(r["frames"] for r in records)
    stepped = sum(r.get("model_frames", 0) for r in records)
    seconds = sum(r.get("model_seconds") or 0 for r in records)
    rate = f" at {round(stepped / seconds, 4)} frames/s{per}" if seconds else ""
    return (f"{done}" + (f", {failed} FAILED" if failed else "")
            + (" (see summary.json)" if failed and saved else "")
            + (f"; {frames} frames{rate}" if records else ""))


def save_summary(out: str, summary: dict, log: Callable[[str], None]) -> bool:
    """write_summary, with a message instead of a traceback when the disk refuses it."""
    try:
        write_summary(out, summary)
        return True
    except OSError as exc:
        log(f"error: cannot write {os.path.join(out, 'summary.json')}: {exc.strerror or exc}; the "
            "sequences on disk are complete, and the next run rewrites it from them")
        return False


def _device_peak_mb() -> Optional[float]:
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        return round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return None
