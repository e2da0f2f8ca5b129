"""The object table: ids <-> channels, groups, removal, label maps."""

from __future__ import annotations

import numpy as np
import pytest

from hmmn_deploy.runtime.errors import RuntimeInputError
from hmmn_deploy.runtime.objects import ObjectTable


def test_channels_follow_groups_and_removal_keeps_the_order():
    table = ObjectTable()
    table.add_group([3, 5])
    table.add_group([9])
    assert table.ids == [3, 5, 9]
    assert table.group_rows() == [slice(0, 2), slice(2, 3)]
    kept, dropped, per_group = table.remove([5])
    assert kept == [0, 1, 3] and dropped == [2] and per_group == [[0], [0]]
    assert table.groups == [[3], [9]] and table.group_rows() == [slice(0, 1), slice(1, 2)]
    kept, dropped, per_group = table.remove([3])  # a group left empty goes
    assert kept == [0, 2] and dropped == [1] and per_group == [[], [0]] and table.groups == [[9]]


def test_refusals_leave_the_table_as_it_was():
    table = ObjectTable()
    table.add_group([1, 2])
    with pytest.raises(RuntimeInputError, match=r"objects \[4\] are not in this video"):
        table.remove([4])
    with pytest.raises(RuntimeInputError, match="every object"):
        table.remove([1, 2])
    with pytest.raises(RuntimeInputError, match=r"labels \[2\] are already objects"):
        table.check_new([2, 3], None)
    with pytest.raises(RuntimeInputError, match=r"3 objects exceed the export's limit of 2 \(memory.max_objects, its engines' profile\)"):
        table.check_new([3], 2)
    assert table.groups == [[1, 2]]


def test_label_maps_use_the_ids_and_widen_past_255():
    table = ObjectTable()
    table.add_group([7, 200])
    channels = np.array([[0, 1], [2, 1]])
    labels = table.label_map(channels)
    assert labels.dtype == np.uint8 and labels.tolist() == [[0, 7], [200, 7]]
    table.add_group([300])
    assert table.label_map(np.array([3])).dtype == np.int32 and table.label_map(np.array([3]))[0] == 300


def test_channel_argmax_is_numpys_argmax_with_ties_to_the_first_channel():
    import torch

    from hmmn_deploy.runtime.session import channel_argmax

    rng = np.random.default_rng(0)
    for k in (1, 2, 5):
        logits = torch.from_numpy(rng.standard_normal((k, 7, 9)).astype(np.float32))
        logits[:, 0, 0] = 1.0  # a tie across every channel: channel 0
        if k > 2:
            logits[2, 1, 1] = logits[1, 1, 1] = logits[:, 1, 1].max() + 1  # a tie of 1 and 2: channel 1
        before = logits.clone()
        got = channel_argmax(logits)
        assert got.dtype == np.uint8 and np.array_equal(got, np.argmax(logits.numpy(), axis=0))
        assert got[0, 0] == 0 and (k <= 2 or got[1, 1] == 1)
        assert torch.equal(logits, before)  # the state's buffer is left as it was
    assert channel_argmax(torch.zeros(300, 2, 2)).dtype == np.int32
