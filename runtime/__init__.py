"""hmmn_deploy.runtime: per-video state and memory bank, backends that run the stage graphs."""
