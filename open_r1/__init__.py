"""PairUni's training package: pair dataset, PairGRPO config, advantages and trainer, entry point `open_r1/grpo.py`."""
