"""Form data for the jobs tests' launches."""


def ids(catalog, *names):
    return [catalog[n].pk for n in names]


def lorahub_data(catalog, *names, examples, **extra):
    """A LoraHub form over the named catalog adapters, every one of them ticked."""
    data = {
        "candidates": "pick",
        "adapters": ids(catalog, *names),
        "top_n": len(names),
        "examples": examples,
        "budget": 12,
        "seed": 3,
        "optimizer": "NGOpt",
    }
    return {**data, **extra}
