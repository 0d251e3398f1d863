"""Names no account may take, and adapter ids the Hub API never serves.

`transformers` and `peft`, pointed at this site by HF_ENDPOINT, load whatever answers at a
model id: an adapter at `meta-llama/Llama-3.1-8B` would load as that base model with the
adapter attached. So the well-known model publishers' names, the site's own and those that
pass for staff are reserved (`name_reserved`), as is the organisation of every base model
with registered files; and an adapter whose owner holds such a name, or whose id is a base
model's, is never served (`adapter_id_refused`). Neither id may become the other: no
adapter is created at a base model's id, no base model is named after an adapter.
"""

import re

from django.core.exceptions import ValidationError

from ..models import Adapter, BaseModel

# First path segments the site itself uses (URLs are /<owner>/<name>).
SITE_PATHS = {
    "accounts", "adapters", "admin", "api", "base-models", "datasets", "docs", "jobs",
    "login", "logout", "media", "models", "new", "search", "settings", "signup", "spaces",
    "static", "upload", "user", "users",
}  # fmt: skip
# Organisations that publish base models on the Hugging Face Hub.
MODEL_PUBLISHERS = {
    "ai21labs", "allenai", "amazon", "apple", "baichuan-inc", "bigcode", "bigscience",
    "cohereforai", "databricks", "deepseek-ai", "eleutherai", "facebook", "google",
    "google-bert", "google-t5", "ibm", "ibm-granite", "internlm", "meta", "meta-llama",
    "microsoft", "mistralai", "mosaicml", "nousresearch", "nvidia", "openai",
    "openai-community", "qwen", "salesforce", "stabilityai", "thudm", "tiiuae",
    "togethercomputer", "unsloth", "01-ai", "xai-org", "zhipuai", "mistral", "tinyllama",
    "sentence-transformers", "black-forest-labs", "google-deepmind", "hf-internal-testing",
    "openbmb", "lmsys", "teknium", "cognitivecomputations", "intel", "hf-audio",
}  # fmt: skip
# The site's and the Hub's names, and names that pass for staff, with any digits or
# separators after them (admin1, admin_2, security-team is not: a word follows).
AUTHORITY = re.compile(
    r"(admin|administrator|abuse|hf|huggingface|lorahub|moderator|official|root|security"
    r"|staff|support|system|webmaster)[-_]?\d*",
    re.IGNORECASE,
)
# The brands themselves in any form (lorahub-team, huggingface-official).
BRANDS = re.compile(r"(lorahub|huggingface|hugging-face)[\w-]*", re.IGNORECASE)


# Characters that pass for letters in a name (l0rahub, meta_llama, hugging.face).
_LOOKALIKES = str.maketrans({"0": "o", "1": "l", "i": "l", "3": "e", "4": "a", "5": "s", "7": "t"})
_SEPARATORS = re.compile(r"[-_.]")


def _canonical(name: str) -> str:
    """`name` as it reads: lower case, without separators, look-alike digits as letters."""
    return _SEPARATORS.sub("", name.lower()).translate(_LOOKALIKES)


_RESERVED_CANONICAL = {_canonical(n) for n in SITE_PATHS | MODEL_PUBLISHERS}
_BRANDS_CANONICAL = tuple(_canonical(n) for n in ("lorahub", "huggingface"))


def registered_organisations() -> set[str]:
    """Lower-cased organisations of the base models with registered files."""
    identifiers = BaseModel.objects.exclude(commit="").filter(identifier__contains="/")
    return {i.split("/", 1)[0].lower() for i in identifiers.values_list("identifier", flat=True)}


def name_reserved(name: str, *, organisations: bool = True) -> bool:
    """Whether no account may take `name` as its namespace; `organisations`: the
    organisations of registered base models too (an account that predates a registration
    under its own name keeps its adapters)."""
    lowered, canonical = name.lower(), _canonical(name)
    return (
        canonical in _RESERVED_CANONICAL
        or bool(AUTHORITY.fullmatch(lowered) or BRANDS.fullmatch(lowered))
        or canonical.startswith(_BRANDS_CANONICAL)
        or (organisations and canonical in {_canonical(o) for o in registered_organisations()})
    )


def is_base_model_id(repo_id: str) -> bool:
    return BaseModel.objects.filter(identifier__iexact=repo_id).exists()


def adapter_id_refused(owner: str, name: str) -> bool:
    """Whether `owner/name` must not be served as an adapter: it could pass for a model."""
    return name_reserved(owner, organisations=False) or is_base_model_id(f"{owner}/{name}")


def adapter_id_check(owner: str, name: str) -> None:
    """Refuse (ValidationError) to create an adapter at an id that could pass for a model."""
    if name_reserved(owner, organisations=False):
        raise ValidationError(
            f"{owner} is a reserved name: adapters cannot be created under it.", code="reserved"
        )
    if is_base_model_id(f"{owner}/{name}"):
        raise ValidationError(
            f"{owner}/{name} is a base model's identifier: name the adapter differently.",
            code="reserved",
        )


def new_base_model_check(identifier: str) -> None:
    """Refuse (ValidationError) to make an adapter's id a base model's: the adapter would
    stop being served, at the word of whoever uploaded an adapter naming it."""
    owner, _, name = identifier.partition("/")
    if BaseModel.objects.filter(identifier=identifier).exists() or not name:
        return
    if Adapter.objects.filter(owner__username__iexact=owner, name__iexact=name).exists():
        raise ValidationError(
            f"{identifier} is an adapter on this site, not a base model.", code="base_model"
        )
