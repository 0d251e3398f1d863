"""Byte counts of huggingface_hub downloads, for progress shown on a job's page."""

from collections.abc import Callable


def counting_bar(advance: Callable[[int], None]):
    """A tqdm class for huggingface_hub's downloads that reports bytes and prints nothing."""
    from tqdm.auto import tqdm

    class CountingBar(tqdm):
        def __init__(self, *args, **kwargs):
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)

        def update(self, n=1):
            advance(int(n or 0))
            return super().update(n)

    return CountingBar
