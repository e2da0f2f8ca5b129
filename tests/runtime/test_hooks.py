"""Session's hooks: the runtime is observed through arguments given to it (timer,
on_graph_inputs), never by replacing its methods (hmmn-quantize's calibration uses
on_graph_inputs)."""

from __future__ import annotations

import numpy as np

from hmmn_ref.sample_video import make_sample_video

from hmmn_deploy.runtime import Session

STEP = ["encode_memory", "encode_query", "match", "decode"]  # one object group


def test_on_graph_inputs_sees_every_call_with_its_inputs_before_it_runs(small_model):
    frames, labels = make_sample_video(num_frames=4, height=96, width=128, seed=3)
    seen = []

    def observe(graph, inputs):
        seen.append((graph, {name: t.clone() for name, t in inputs.items()}))

    observed = Session.from_model(small_model, on_graph_inputs=observe)
    plain = Session.from_model(small_model)
    states = [s.start(frames[0], labels[0]) for s in (observed, plain)]
    for frame in frames[1:]:
        got, want = (s.step(state, frame).labels for s, state in zip((observed, plain), states))
        np.testing.assert_array_equal(got, want)  # observing changes nothing
    assert [graph for graph, _ in seen] == STEP * (len(frames) - 1)
    specs = observed.specs
    for graph, inputs in seen:
        assert set(inputs) == {s.name for s in specs[graph].inputs}, graph
    # The query's frame as it was fed (not the buffer's later contents): frame 1, then 2, ...
    queries = [inputs["frame"] for graph, inputs in seen if graph == "encode_query"]
    assert not np.array_equal(queries[0].numpy(), queries[1].numpy())


def test_no_hook_by_default(small_model):
    assert Session.from_model(small_model).on_graph_inputs is None
