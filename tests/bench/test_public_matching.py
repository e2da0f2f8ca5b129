"""hmmn-bench's baseline reads memory as the public code did (bench/public_matching.py): its model
is given those reads (hmmn_ref.matching.Reads); hmmn_ref.matching itself is never patched."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np

from hmmn_ref import matching
from hmmn_ref.sample_video import make_sample_video

from hmmn_deploy.bench import public_matching
from hmmn_deploy.bench.runs import BaselineRun

ORIGINAL = {field.name: getattr(matching, field.name) for field in dataclasses.fields(matching.Reads)}


def counted(reads: matching.Reads, calls: dict) -> matching.Reads:
    def wrap(name, fn):
        def call(*args, **kwargs):
            calls[name] = calls.get(name, 0) + 1
            return fn(*args, **kwargs)
        return call
    return matching.Reads(**{f.name: wrap(f.name, getattr(reads, f.name)) for f in dataclasses.fields(reads)})


def baseline_masks(model, frames, labels, reads) -> list:
    run = BaselineRun(copy.deepcopy(model), frames, labels[0], mem_every=2, reads=reads)  # it sets the model's reads
    run.start(frames[0], labels[0])
    return [run.step(frame, timed=True) for frame in frames[1:]]


def test_the_public_reads_are_the_ones_the_baseline_runs(small_model):
    frames, labels = make_sample_video(num_frames=5, height=96, width=128, num_objects=2, seed=5)
    calls = {}
    public = baseline_masks(small_model, frames, labels, counted(public_matching.READS, calls))
    assert set(calls) == set(ORIGINAL) and min(calls.values()) >= len(frames) - 1, calls
    current = baseline_masks(small_model, frames, labels, matching.READS)
    agreement = np.mean([np.mean(a == b) for a, b in zip(public, current)])
    assert agreement > 0.999  # the same values (to ~6e-7): the same masks but for ties
    # Nothing global changed: hmmn_ref's functions are its own, and a new model reads with them.
    assert {name: getattr(matching, name) for name in ORIGINAL} == ORIGINAL
    assert type(small_model)(small_model.config).reads is matching.READS


def test_public_reads_differ_from_the_current_formulation():
    # A baseline "public" in name only would time this project's own reads.
    assert all(getattr(public_matching.READS, name) is not fn for name, fn in ORIGINAL.items())
