"""The composition engine: pure torch/peft/nevergrad code, no Django imports.

adapters (PEFT LoRA directories in and out), compat (can these be combined?), examples
(parsing, limits, tokenising), lorahub (LoraHub search), lego (LoRA-LEGO), baselines (peft's
merges, exact task arithmetic), evaluate (loss, exact match), run (one function per job
kind), cli / __main__ (`python -m composer.engine`).
"""
