"""Shapes of stored adapters and base models, read from their safetensors headers.

Checking whether adapters fit together, or fit their base model, needs only shapes: these
functions read a header (at most MAX_HEADER_BYTES, usually a few KB) straight from storage
with ranged reads, load no tensors, copy no files and leave nothing behind. A blob's content
never changes (its name is its sha256), so its shapes are cached under the sha256: a form
checked again, or another adapter on the same base model, reads no header at all.
"""

from pathlib import Path

from django.core.cache import cache

from composer.engine.compat import AdapterShapes, check_against_weights, shapes_from_header

from ..models import AdapterVersion, BaseModel, Blob
from .safetensors_header import read_safetensors_header
from .stored_reads import blob_reader
from .validation import MAX_HEADER_BYTES, WEIGHTS_FILE

Shapes = dict[str, tuple[int, ...]]


SHAPES_TTL = 7 * 24 * 3600


def blob_tensor_shapes(blob: Blob, filename: str) -> Shapes:
    """{tensor: shape} from the blob's safetensors header, read once per cache lifetime."""
    key = f"hub:shapes:{blob.sha256}"
    shapes = cache.get(key)
    if shapes is None:
        with blob_reader(blob) as f:
            tensors = read_safetensors_header(
                f, blob.size, filename=filename, max_header_bytes=MAX_HEADER_BYTES
            )
        shapes = {name: list(t.shape) for name, t in tensors.items()}
        cache.set(key, shapes, timeout=SHAPES_TTL)
    return {name: tuple(shape) for name, shape in shapes.items()}


def version_shapes(version: AdapterVersion, label: str) -> AdapterShapes:
    """An adapter version's module shapes, from its weights file's header."""
    weights = version.files.select_related("blob").get(filename=WEIGHTS_FILE).blob
    return shapes_from_header(blob_tensor_shapes(weights, WEIGHTS_FILE), version.config, label)


def base_model_weight_shapes(base: BaseModel) -> Shapes | None:
    """`<module>.weight` -> [d_out, d_in] of a base model's matrices, from the headers of
    its registered safetensors files (or its local folder); None when it has neither."""
    shapes: Shapes = {}
    registered = [
        f for f in base.files.select_related("blob") if f.filename.endswith(".safetensors")
    ]
    if registered:
        for f in registered:
            shapes |= blob_tensor_shapes(f.blob, f.filename)
    elif base.local_path and Path(base.local_path).is_dir():
        for path in sorted(Path(base.local_path).glob("*.safetensors")):
            with open(path, "rb") as f:
                tensors = read_safetensors_header(
                    f, path.stat().st_size, filename=path.name, max_header_bytes=MAX_HEADER_BYTES
                )
            shapes |= {name: t.shape for name, t in tensors.items()}
    else:
        return None
    return {k: v for k, v in shapes.items() if k.endswith(".weight") and len(v) == 2}


def check_fits_base_model(adapters: list[AdapterShapes], base: BaseModel) -> None:
    """Raise IncompatibleAdapters unless every module of `adapters` is a matrix of the same
    shape in `base` (nothing to check for a base model whose files are unknown)."""
    weights = base_model_weight_shapes(base)
    if weights is not None:
        check_against_weights(adapters, weights)
