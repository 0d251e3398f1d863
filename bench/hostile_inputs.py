"""The cost of hostile inputs, before and after, side by side in one process.

- Model cards: the renderer pages used to run on every view (Python-Markdown, when it is
  installed) against the one that now runs once when a card is written (markdown-it-py +
  nh3, hub.services.cards), on cards of `[`, `![` and `[a](`.
- Module patterns: Python's backtracking `re` against RE2 (composer.engine.patterns) for
  `(a+)+b` and module names of n a's: `re` doubles with each character, RE2 stays linear.
- The fast lane (bench.fast_lane, on real workers, PostgreSQL and Redis; skipped with
  LORAHUB_BENCH_FAST_LANE=0): a victim's try while 3 accounts queue tries and while 2 slow
  imports run, before and after tries took turns and transfers got their own worker.

CPU seconds (process time), the median of a few rounds. Writes
bench/results/hostile_inputs.json.
"""

import os
import re
import statistics
import time

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


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    from bench.catalog_report import write_result

    result = {"cards": cards(), "patterns": patterns()}
    if os.environ.get("LORAHUB_BENCH_FAST_LANE", "1") != "0":
        from bench.fast_lane import scenarios

        result["fast_lane"] = scenarios()
    print(write_result("hostile_inputs", result))


if __name__ == "__main__":
    main()
