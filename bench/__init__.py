"""hmmn_deploy.bench: the `hmmn-bench` command: per-stage latency, FLOPs, scaling, profiles."""
