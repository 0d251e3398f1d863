"""The Hub API under test: a live server, tokens, and a real PEFT adapter on disk."""

import os
import shutil
from pathlib import Path

import pytest
from huggingface_hub import HfApi

from hfapi.tokens import token_create

# Bump when the fixture adapters change, so the on-disk cache is rebuilt.
FIXTURE_VERSION = "hfapi-1"
ROOT = Path(__file__).resolve().parents[2]
CACHE = Path.home() / ".cache" / "lorahub" / FIXTURE_VERSION


@pytest.fixture(scope="session")
def tiny_base() -> Path:
    path = CACHE / "tiny-llama"
    if not (path / "config.json").exists():
        from composer.engine.toy import build_tiny_llama  # imports torch: only when building

        build_tiny_llama(path.with_suffix(".tmp"))
        path.with_suffix(".tmp").rename(path)
    return path


def _adapter(tiny_base: Path, name: str, seed: int) -> Path:
    path = CACHE / name
    if not (path / "adapter_model.safetensors").exists():
        from composer.engine.toy import make_random_adapter

        tmp = path.with_suffix(".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        make_random_adapter(
            tiny_base,
            tmp,
            r=4,
            alpha=8,
            target_modules=("q_proj", "v_proj"),
            seed=seed,
            base_model_name="lorahub-test/tiny-llama",
        )
        tmp.rename(path)
    return path


@pytest.fixture(scope="session")
def adapter_dir(tiny_base) -> Path:
    """A real adapter folder written by peft's save_pretrained."""
    return _adapter(tiny_base, "adapter-a", seed=1)


@pytest.fixture(scope="session")
def adapter_dir_b(tiny_base) -> Path:
    return _adapter(tiny_base, "adapter-b", seed=2)


@pytest.fixture
def hub(live_server) -> str:
    return live_server.url


@pytest.fixture
def alice_write(alice) -> str:
    return token_create(user=alice, name="laptop", scope="write")[1]


@pytest.fixture
def alice_read(alice) -> str:
    return token_create(user=alice, name="reader", scope="read")[1]


@pytest.fixture
def bob_write(bob) -> str:
    return token_create(user=bob, name="bob", scope="write")[1]


@pytest.fixture
def api(hub):
    """HfApi against the live server; token=False means anonymous (no stored token)."""

    def make(token: str | bool = False) -> HfApi:
        return HfApi(endpoint=hub, token=token)

    return make


def client_env(hub: str, token: str | None, tmp_path: Path) -> dict:
    """The environment of a client process: HF_ENDPOINT here, its own cache, no other HF_*."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_"))}
    env.update(HF_ENDPOINT=hub, HF_HOME=str(tmp_path / "hf-home"), PYTHONPATH=str(ROOT))
    return env | ({"HF_TOKEN": token} if token else {})


def files_of(folder: Path) -> dict[str, Path]:
    return {p.name: p for p in folder.iterdir() if p.is_file()}


@pytest.fixture
def sql_lora(alice, adapter_dir):
    """alice/sql-lora, public, created through the catalog's own service."""
    from hub.services.adapters import adapter_create

    return adapter_create(
        owner=alice, name="sql-lora", files=files_of(adapter_dir), tags=["sql"], task=""
    )


@pytest.fixture
def secret_lora(alice, adapter_dir_b):
    """alice/secret-lora, private."""
    from hub.services.adapters import adapter_create

    return adapter_create(
        owner=alice, name="secret-lora", files=files_of(adapter_dir_b), private=True
    )


@pytest.fixture(autouse=True)
def _close_client_connections():
    """Close the client's keep-alive connections after each test: the live server's
    request threads then end and release their database connections (PostgreSQL cannot
    drop the test database while they are open)."""
    yield
    from huggingface_hub.utils import close_session

    close_session()


@pytest.fixture(scope="session")
def upstream(tmp_path_factory, adapter_dir):
    """(url, carol's write token) of a second running instance of this site."""
    from tests.hfapi import upstream_server

    process, url, token = upstream_server.start(tmp_path_factory.mktemp("upstream"), adapter_dir)
    yield url, token
    process.terminate()
    process.wait(timeout=10)
