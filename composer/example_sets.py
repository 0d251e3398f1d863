"""A merge job's example sets (one, or one per input) in the Job's `examples` rows and back."""


def example_set_rows(sets) -> list[dict]:
    """Several sets are stored as one list of rows, each tagged with its set's input position."""
    tagged = len(sets) > 1
    return [
        {"input": e.input, "output": e.output} | ({"task": i} if tagged else {})
        for i, examples in enumerate(sets)
        for e in examples
    ]


def example_sets_of(rows: list[dict]) -> list[list]:
    """The sets `example_set_rows` stored, as lists of engine Examples ([] without rows)."""
    from composer.engine.examples import Example

    sets: dict[int, list] = {}
    for row in rows:
        sets.setdefault(row.get("task", 0), []).append(Example(row["input"], row["output"]))
    return [sets[i] for i in sorted(sets)]
