"""The cost of hostile inputs, before and after, side by side in one process.

- Model cards: the renderer pages used to run on every view (Python-Markdown, when it is
  installed) against the one that now runs once when a card is written (markdown-it-py +
  nh3, hub.services.cards), on cards of `[`, `![` and `[a](`.
- Module patterns: Python's backtracking `re` against RE2 (composer.engine.patterns) for
  `(a+)+b` and module names of n a's: `re` doubles with each character, RE2 stays linear.
- rank_pattern keys × modules: an upload whose config has 10,000 `rank_pattern` keys and
  whose header names 150 modules. Before, every key was compiled again for every module (a
  cache of 1,024 patterns thrashed): timed on 15 modules and scaled to 150. After, the
  upload is refused before any matching; the most an accepted upload can cost is timed
  with the worst keys found (256 that keep many RE2 states alive) at the bound, beside an
  8B Llama's full-path rank_pattern (224 keys, 224 modules).

- README checks (/api/validate-yaml, anonymous): the front matter of a 64 KB card of 32,000
  list items parsed up to strict_yaml's 100,000 nodes (before) and up to a card's 5,000
  (after), and the CPU one client address can ask for in a minute (1.9 requests/s before,
  LORAHUB_VALIDATE_YAML_PER_MINUTE after); and, under gunicorn with two workers on the
  DATABASE_URL database (migrated), another client's latency alone and during the attack.
- Card edits: rendering the costliest 64 KB card, and what one account may spend an hour
  (edits were not counted; now LORAHUB_WRITES_PER_HOUR, and an unchanged card is not
  rendered again).
- NaN / infinity in an upload: reading a 256 MiB bfloat16 weights file's values in 8 MiB
  chunks (wall seconds; the upload itself wrote these bytes just before).
- Big files on S3 (bench.big_file_reads): slow readers of an archive and a header check,
  read through S3File against ranged and streamed reads.
- The fast lane (bench.fast_lane, on real workers, PostgreSQL and Redis; skipped with
  LORAHUB_BENCH_FAST_LANE=0): a victim's try while 3 accounts queue tries and while 2 slow
  imports run, before and after tries took turns and transfers got their own worker.

CPU seconds (process time), the median of a few rounds. Writes
bench/results/hostile_inputs.json.
"""

import io
import json
import os
import random
import re
import statistics
import time
from functools import lru_cache

import django


def cpu_seconds(fn, rounds: int = 3) -> float:
    times = []
    for _ in range(rounds):
        started = time.process_time()
        fn()
        times.append(time.process_time() - started)
    return statistics.median(times)


def cards() -> list[dict]:
    from hub.services.cards import card_render

    try:
        import markdown
    except ImportError:
        markdown = None
    rows = []
    for unit, sizes in (("[", (2000, 4000, 16000)), ("![", (2000, 8000)), ("[a](", (2000, 4000))):
        for n in sizes:
            text = unit * n
            row = {"card": f"{n:,} × {unit!r}", "bytes": len(text)}
            row["markdown_it_nh3_s"] = round(cpu_seconds(lambda t=text: card_render(t)), 3)
            if markdown is not None and len(text) <= 8000:  # 16,000 '[' took 37 s a view
                old = lambda t=text: markdown.markdown(t, extensions=["fenced_code", "tables"])  # noqa: E731
                row["python_markdown_s"] = round(cpu_seconds(old, rounds=1), 3)
            print(row, flush=True)
            rows.append(row)
    return rows


def patterns() -> list[dict]:
    from composer.engine.patterns import is_targeted

    rows = []
    for n in (16, 18, 20, 22, 28, 10_000):
        module = "a" * n + "c"
        row = {"module_chars": n + 1}
        row["re2_s"] = cpu_seconds(lambda m=module: is_targeted(m, "(a+)+b"), rounds=5)
        if n <= 22:  # 28 characters held a process 14 s
            backtracking = lambda m=module: re.fullmatch("(a+)+b", m)  # noqa: E731
            row["python_re_s"] = round(cpu_seconds(backtracking, rounds=1), 4)
        print(row, flush=True)
        rows.append(row)
    return rows


def _adapter(modules: list[str], rank_pattern: dict, r: int = 2) -> dict:
    """An upload's files, in memory: a config with `rank_pattern`, tiny weights."""
    import torch
    from safetensors.torch import save

    config = {
        "peft_type": "LORA",
        "r": r,
        "lora_alpha": 2 * r,
        "target_modules": modules,
        "rank_pattern": rank_pattern,
    }
    tensors = {}
    for m in modules:
        tensors[f"base_model.model.{m}.lora_A.weight"] = torch.zeros(r, 4)
        tensors[f"base_model.model.{m}.lora_B.weight"] = torch.zeros(4, r)
    return {
        "adapter_config.json": io.BytesIO(json.dumps(config).encode()),
        "adapter_model.safetensors": io.BytesIO(save(tensors)),
    }


def _validate(files: dict) -> str:
    from django.core.exceptions import ValidationError

    from hub.services.validation import validate_adapter_files

    try:
        validate_adapter_files(files)
    except ValidationError as exc:
        return "refused: " + exc.messages[0][:120]
    return "accepted"


def _old_rank_lookup(modules: list[str], keys: dict) -> None:
    """The matching uploads ran before: each key compiled (cache of 1,024) per module."""
    import re2

    compile_tail = lru_cache(maxsize=1024)(lambda k: re2.compile(rf"(.*\.)?({k})$"))
    for module in modules:
        next((k for k in keys if compile_tail(k).match(module)), None)


def rank_patterns() -> list[dict]:
    from composer.engine.patterns import MAX_PATTERN_KEYS, MAX_PATTERN_WORK

    rows = []
    attack_modules = [f"model.layers.{i // 4}.self_attn.{'qkvo'[i % 4]}_proj" for i in range(150)]
    attack_keys = {f"model.layers.{i}.mlp.x{i}_proj": 8 for i in range(10_000)}
    row = {"attack": "10,000 rank_pattern keys, 150 modules (a 180 KB config)"}
    row["before_s"] = round(
        10 * cpu_seconds(lambda: _old_rank_lookup(attack_modules[:15], attack_keys), rounds=1), 2
    )
    files = _adapter(attack_modules, attack_keys)
    row["after_s"] = round(cpu_seconds(lambda: _validate(files), rounds=3), 4)
    row["after"] = _validate(files)
    print(row, flush=True)
    rows.append(row)

    # The worst accepted: keys that keep ~20 states each alive, module paths of a's and b's
    # filling the bound keys × characters.
    rng = random.Random(1)
    keys = {f"[ab]*a[ab]{{20}}|x{i}": 2 for i in range(MAX_PATTERN_KEYS)}
    length = 250
    count = MAX_PATTERN_WORK // (len(keys) * length)
    modules = ["".join(rng.choice("ab") for _ in range(length)) for _ in range(count)]
    row = {"attack": f"{len(keys)} state-heavy keys, {count} modules of {length} characters"}
    row["before_s"] = round(cpu_seconds(lambda: _old_rank_lookup(modules, keys), rounds=1), 2)
    files = _adapter(modules, keys)
    row["after_s"] = round(cpu_seconds(lambda: _validate(files), rounds=1), 3)
    row["after"] = _validate(files)
    print(row, flush=True)
    rows.append(row)

    llama = [
        f"model.layers.{i}.{part}"
        for i in range(32)
        for part in (
            *(f"self_attn.{p}_proj" for p in "qkvo"),
            *(f"mlp.{p}_proj" for p in ("gate", "up", "down")),
        )
    ]
    keys = {m: 4 for m in llama}
    row = {"legitimate": f"{len(keys)} full-path keys, {len(llama)} modules (an 8B Llama)"}
    row["before_s"] = round(cpu_seconds(lambda: _old_rank_lookup(llama, keys), rounds=1), 3)
    files = _adapter(llama, keys, r=4)
    row["after_s"] = round(cpu_seconds(lambda: _validate(files), rounds=3), 3)
    row["after"] = _validate(files)
    print(row, flush=True)
    rows.append(row)
    return rows


def readme_checks() -> list[dict]:
    from django.conf import settings
    from django.core.exceptions import ValidationError

    from composer.engine import strict_yaml
    from hub.services.card_metadata import card_metadata

    card = "---\ntags: [" + "1," * 32_000 + "1]\n---\n"
    card = card[: 64 * 1024 - 8] + "1]\n---\n"

    def before():
        try:
            strict_yaml.loads(card[4 : card.rindex("\n---")])
        except strict_yaml.YAMLInputError:
            pass

    def after():
        try:
            card_metadata(card, 10)
        except ValidationError:
            pass

    row = {"attack": "validate-yaml, a 64 KB card of 32,000 list items"}
    row["before_s"] = round(cpu_seconds(before), 3)
    row["after_s"] = round(cpu_seconds(after), 4)
    row["before_cpu_s_per_minute_per_address"] = round(1.9 * 60 * row["before_s"], 1)
    per_minute = settings.LORAHUB_VALIDATE_YAML_PER_MINUTE
    row["after_cpu_s_per_minute_per_address"] = round(per_minute * row["after_s"], 2)
    print(row, flush=True)
    return [row]


def _latencies(url: str, seconds: float, every: float = 0.25) -> dict:
    import requests

    times = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.perf_counter()
        requests.get(url, timeout=150)
        times.append(time.perf_counter() - started)
        time.sleep(every)
    times.sort()
    return {
        "p50_s": round(times[len(times) // 2], 3),
        "p95_s": round(times[int(len(times) * 0.95)], 3),
        "max_s": round(times[-1], 3),
    }


def readme_check_victim(seconds: float = 20) -> list[dict]:
    """Another client's latency (the home page) under gunicorn with two workers, alone and
    while one address sends the 64 KB README check at 1.9 requests a second."""
    import threading
    from pathlib import Path

    import requests

    from bench.catalog_server import gunicorn_server

    card = "---\ntags: [" + "1," * 32_000 + "1]\n---\n"
    body = json.dumps({"content": card[: 64 * 1024 - 8] + "1]\n---\n"})
    var_dir = Path(__file__).resolve().parent.parent / "var" / "bench_hostile"
    with gunicorn_server(os.environ["DATABASE_URL"], var_dir, workers=2) as server:
        row = {"attack": "validate-yaml at 1.9/s from one address, victim GET /"}
        row["victim_alone"] = _latencies(server.url("/"), seconds / 2)
        stop = threading.Event()
        statuses: dict[int, int] = {}

        def attack():
            while not stop.is_set():
                response = requests.post(
                    server.url("/api/validate-yaml"),
                    data=body,
                    headers={"Content-Type": "application/json"},
                    timeout=150,
                )
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                stop.wait(1 / 1.9)

        attacker = threading.Thread(target=attack)
        attacker.start()
        try:
            row["victim_under_attack"] = _latencies(server.url("/"), seconds)
        finally:
            stop.set()
            attacker.join()
        row["attack_statuses"] = {str(k): v for k, v in sorted(statuses.items())}
    print(row, flush=True)
    return [row]


def card_edits() -> list[dict]:
    """An edit's main cost is rendering its card; edits were not counted as writes."""
    from django.conf import settings

    from hub.services.cards import card_render

    text = "![" * 32_000  # 64 KB, the costliest card in cards()
    row = {"attack": "card edits of a 64 KB card of '!['"}
    row["render_s"] = round(cpu_seconds(lambda: card_render(text), rounds=1), 2)
    # Before: as fast as one worker renders them; after: the hourly write limit.
    row["before_cpu_s_per_hour_per_account"] = 3600
    row["after_cpu_s_per_hour_per_account"] = round(
        settings.LORAHUB_WRITES_PER_HOUR * row["render_s"], 1
    )
    print(row, flush=True)
    return [row]


def nonfinite_scan() -> list[dict]:
    import tempfile

    import torch
    from safetensors.torch import save_file

    from hub.services.safetensors_header import first_nonfinite, read_safetensors_header

    tensors = {f"m{i}.lora_A.weight": torch.randn(16, 4096).bfloat16() for i in range(2048)}
    with tempfile.NamedTemporaryFile(suffix=".safetensors") as tmp:
        save_file(tensors, tmp.name)
        size = os.path.getsize(tmp.name)
        with open(tmp.name, "rb") as f:
            header = read_safetensors_header(f, size, filename="w", max_header_bytes=16 << 20)
            started = time.perf_counter()
            found = first_nonfinite(f, header)
            seconds = time.perf_counter() - started
    row = {"check": f"NaN/inf scan of {size >> 20} MiB bfloat16", "wall_s": round(seconds, 3)}
    row["found"] = found
    print(row, flush=True)
    return [row]


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    from bench.big_file_reads import big_file_rows
    from bench.catalog_report import write_result

    result = {
        "rank_patterns": rank_patterns(),
        "readme_checks": readme_checks(),
        "readme_check_victim": readme_check_victim(),
        "card_edits": card_edits(),
        "nonfinite_scan": nonfinite_scan(),
        "cards": cards(),
        "patterns": patterns(),
    }
    result["big_files"] = big_file_rows()
    if os.environ.get("LORAHUB_BENCH_FAST_LANE", "1") != "0":
        from bench.fast_lane import scenarios

        result["fast_lane"] = scenarios()
    print(write_result("hostile_inputs", result))


if __name__ == "__main__":
    main()
