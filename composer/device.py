"""Which device a job runs on, decided inside the worker child.

CUDA must not be initialised in the Celery parent process (a CUDA context does not survive
fork), so this is only ever called from a running task. One worker per GPU: the worker is
started with CUDA_VISIBLE_DEVICES set, and sees its GPU as cuda:0.
"""

from django.conf import settings


def pick_device() -> str:
    """COMPOSER_DEVICE when set ("cpu", "cuda:1"), else cuda:N when CUDA is available, else cpu."""
    if settings.COMPOSER_DEVICE not in ("", "auto"):
        return settings.COMPOSER_DEVICE
    import torch

    if torch.cuda.is_available():
        return f"cuda:{torch.cuda.current_device()}"
    return "cpu"
