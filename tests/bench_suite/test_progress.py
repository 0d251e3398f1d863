"""Building the demo's models reports progress (`make run` shows it while it trains)."""

import dataclasses
import fcntl
import threading

from composer.engine import training
from composer.engine.training import SUITE_VERSION, SuiteSpec

SMALL = dataclasses.replace(
    SuiteSpec.for_kind("t5"),
    d_model=32,
    num_layers=1,
    num_heads=2,
    d_ff=64,
    base_steps=20,
    base_batch=8,
    lora_steps=2,
    lora_batch=4,
    workers=1,
)


def test_a_build_reports_steps_and_adapters_then_a_waiter_says_it_waits(tmp_path):
    lines: list[str] = []
    key = SuiteSpec.for_kind("t5").key
    suite_dir = tmp_path / f"suite-{SUITE_VERSION}" / key
    suite_dir.parent.mkdir(parents=True)
    training._build_suite(SMALL, suite_dir, lines.append)

    assert lines[0] == "Training the base model (20 steps)..."
    steps = [line for line in lines if "base model: step" in line]
    assert [s.split("step ")[1].split(",")[0] for s in steps] == [
        f"{i}/20" for i in range(2, 21, 2)
    ]
    adapters = [line for line in lines if line.startswith("  adapter ")]
    n = len(training.synthetic.TRAIN_TASKS)
    assert len(adapters) == n and adapters[-1].startswith(f"  adapter {n}/{n} ")
    assert lines.index(steps[-1]) < lines.index(adapters[0])

    # Another process holds the build lock: ensure_suite says it waits, then loads.
    waited: list[str] = []
    with open(suite_dir.parent / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        loader = threading.Thread(
            target=training.ensure_suite, kwargs={"root": tmp_path, "progress": waited.append}
        )
        loader.start()
        loader.join(timeout=2)
        assert loader.is_alive()  # blocked on the lock
        fcntl.flock(lock, fcntl.LOCK_UN)
    loader.join(timeout=120)
    assert not loader.is_alive()
    assert waited == ["Another process is building these models; waiting for it to finish..."]
