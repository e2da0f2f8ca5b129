"""Average the weights of several runs of one model (a "weight soup"), or of one run's kept weights.

    python tools/average_weights.py A.pth B.pth runs/demo/weights/iteration_00*.pth --export W.pth

Every input is a state dict (or a train_demo checkpoint, whose "model" entry is used) of the
same model: the same names, shapes and dtypes. Floating-point tensors are averaged with equal
weight; any other tensor (BatchNorm's step counters) must be equal in all inputs and is kept.
Averaging only makes sense for weights that share a starting point (fine-tunes of one model,
or points along one run): the demo model's BatchNorm statistics are frozen while training, so
the mean needs no statistics recomputed. Writes W.pth and W.json: the command, the model
configuration where the records agree on one, each input's SHA-256, and the training record
beside each input (X.json for X.pth) or given with --record.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import torch

from hmmn_deploy.export.manifest import sha256_file


def load_state(path: str) -> dict:
    state = torch.load(path, weights_only=False, map_location="cpu")  # checkpoints also hold RNG states
    if isinstance(state, dict) and isinstance(state.get("model"), dict):  # a train_demo checkpoint
        state = state["model"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path}: not a state dict (a mapping of names to tensors)")
    return state


def average_states(states: list[dict], names: list[str]) -> dict:
    """Mean of the floating-point tensors of `states`; other tensors must agree and are kept."""
    first, first_name = states[0], names[0]
    for state, name in zip(states[1:], names[1:]):
        missing, extra = sorted(set(first) - set(state)), sorted(set(state) - set(first))
        if missing or extra:
            raise ValueError(f"{name} and {first_name} hold different tensors: missing {missing[:5]}, "
                             f"extra {extra[:5]}; average only weights of one model")
        for key, value in first.items():
            if state[key].shape != value.shape or state[key].dtype != value.dtype:
                raise ValueError(f"{name}: {key} is {tuple(state[key].shape)} {state[key].dtype}, "
                                 f"{first_name} has {tuple(value.shape)} {value.dtype}")
    averaged = {}
    for key, value in first.items():
        if value.is_floating_point():
            total = torch.zeros_like(value, dtype=torch.float64)
            for state in states:
                total += state[key].double()
            averaged[key] = (total / len(states)).to(value.dtype)
        else:
            for state, name in zip(states[1:], names[1:]):
                if not torch.equal(state[key], value):
                    raise ValueError(f"{name}: {key} differs from {first_name}'s and cannot be averaged")
            averaged[key] = value.clone()
    return averaged


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("weights", nargs="+", help="state dicts or train_demo checkpoints of one model")
    p.add_argument("--export", required=True, help="write the mean here (state dict), and a .json record beside it")
    p.add_argument("--record", action="append", default=[],
                   help="a training record to keep in W.json (repeatable), e.g. the run whose kept weights are averaged")
    args = p.parse_args(argv)
    if len(args.weights) < 2:
        p.error("give at least two weight files to average")
    for path in args.weights + args.record:
        if not os.path.isfile(path):
            p.error(f"{path}: no such file")
    try:
        states = [load_state(path) for path in args.weights]
        averaged = average_states(states, args.weights)
    except ValueError as error:
        print(f"average_weights: {error}", file=sys.stderr)
        return 1
    inputs = []
    for path in args.weights:
        entry = {"path": path, "sha256": sha256_file(path)}
        beside = os.path.splitext(path)[0] + ".json"
        if os.path.isfile(beside):
            with open(beside) as f:
                entry["record"] = json.load(f)
        inputs.append(entry)
    records = []
    for path in args.record:
        with open(path) as f:
            records.append({"path": path, "record": json.load(f)})
    configs = {r["record"].get("config") for r in inputs + records if "record" in r} - {None}
    os.makedirs(os.path.dirname(os.path.abspath(args.export)), exist_ok=True)
    torch.save(averaged, args.export + ".tmp")
    os.replace(args.export + ".tmp", args.export)
    with open(os.path.splitext(args.export)[0] + ".json", "w") as f:
        record = {"command": "python tools/average_weights.py " + " ".join(sys.argv[1:] if argv is None else argv)}
        if len(configs) == 1:  # the model configuration its inputs' records agree on
            record["config"] = configs.pop()
        # every size any input was trained at (hmmn_deploy.core.working_size reads the field)
        sizes = [s for r in inputs + records if "record" in r for s in r["record"].get("trained_sizes", [])]
        if sizes:
            record["trained_sizes"] = [s for i, s in enumerate(sizes) if s not in sizes[:i]]
        json.dump({**record, "averaged": inputs, "records": records}, f, indent=2)
    print(f"average of {len(states)} weight files written to {args.export}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
