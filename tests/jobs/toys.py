"""Tiny base models and adapters for the jobs tests, built once and cached on disk."""

import os
import shutil
from pathlib import Path

from composer.engine.toy import build_tiny_llama, build_tiny_t5, make_random_adapter

VERSION = "jobs-toys-v1"
T5_NAME, LLAMA_NAME = "toy/tiny-t5", "toy/tiny-llama"
# name -> (base, rank, alpha, target modules, seed)
ADAPTERS = {
    "t5-a": ("t5", 4, 8, ("q", "v"), 1),
    "t5-b": ("t5", 4, 8, ("q", "v"), 2),
    "t5-c": ("t5", 4, 8, ("q", "v"), 3),
    "t5-qk": ("t5", 4, 8, ("q", "k"), 4),
    "llama-a": ("llama", 4, 8, ("q_proj", "v_proj"), 5),
}


def toy_root() -> Path:
    root = Path(os.environ.get("LORAHUB_CACHE", Path.home() / ".cache" / "lorahub")) / VERSION
    if (root / "done").exists():
        return root
    tmp = root.with_name(root.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    bases = {"t5": build_tiny_t5(tmp / "t5"), "llama": build_tiny_llama(tmp / "llama")}
    names = {"t5": T5_NAME, "llama": LLAMA_NAME}
    for name, (base, r, alpha, targets, seed) in ADAPTERS.items():
        make_random_adapter(
            bases[base],
            tmp / "adapters" / name,
            r=r,
            alpha=alpha,
            target_modules=targets,
            seed=seed,
            init_std=0.2,
            base_model_name=names[base],
        )
    (tmp / "done").write_text(VERSION)
    try:
        tmp.rename(root)
    except OSError:  # built concurrently by another process
        shutil.rmtree(tmp, ignore_errors=True)
    return root
