"""The catalog: base models, tags, adapters, their versions and content-addressed files.

An adapter's files are immutable once uploaded: a re-upload adds an AdapterVersion whose
AdapterFiles point at Blobs (stored once per sha256). Metadata on the version (rank, alpha,
target modules, ...) is read from the uploaded files, never taken from a form.
"""

from django.conf import settings
from django.contrib.postgres.search import SearchVectorField
from django.db import models
from django.urls import reverse


class BaseModel(models.Model):
    """A model adapters are trained for, e.g. `google/flan-t5-large`."""

    identifier = models.CharField(max_length=200, unique=True)
    architecture = models.CharField(max_length=100, blank=True)
    description = models.TextField(blank=True)
    # A directory holding the model itself (`from_pretrained`-loadable), for demo and
    # locally available models; empty for catalog-only entries.
    local_path = models.CharField(max_length=500, blank=True)
    # The registered files' revision (hub.services.base_models): a 40-hex id derived from
    # the file names and contents; empty while no files are registered.
    commit = models.CharField(max_length=40, blank=True)
    # Where registered files came from: a folder, or `endpoint repo@commit` of an upstream.
    source = models.CharField(max_length=500, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["identifier"]

    def __str__(self):
        return self.identifier

    def get_absolute_url(self):
        return reverse("hub:base_model_detail", args=[self.identifier])


class Tag(models.Model):
    name = models.SlugField(max_length=50, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class SearchWord(models.Model):
    """A word of public adapters' names, cards, tags, tasks and base models: what a search
    word that matches nothing is respelled to (hub.services.search)."""

    word = models.CharField(max_length=64, primary_key=True)
    # How many public adapters use the word; at 0 it is deleted.
    adapters = models.PositiveIntegerField(default=0)

    def __str__(self):
        return self.word


class ThrottleEvent(models.Model):
    """Something a user or address did that is limited per period (hub.services.throttle)."""

    scope = models.CharField(max_length=20)  # "login" (failures), "write"
    key = models.CharField(max_length=200)  # "user:<id or name>", "address:<ip>"
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["scope", "key", "at"], name="hub_throttle_scope_key_at")]

    def __str__(self):
        return f"{self.scope} {self.key} {self.at}"


class DownloadMark(models.Model):
    """One client has downloaded one adapter file on `day`: a download counts once per
    client, file and day (hub.services.downloads)."""

    key = models.CharField(max_length=64, primary_key=True)  # sha256 of client, file, day
    day = models.DateField(db_index=True)

    def __str__(self):
        return f"{self.key[:12]} {self.day}"


class Adapter(models.Model):
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="adapters"
    )
    name = models.CharField(max_length=96)
    # The model card, Markdown, and its sanitised HTML rendered when it is written
    # (hub.services.cards); pages show the HTML and never parse Markdown.
    description = models.TextField(blank=True)
    description_html = models.TextField(blank=True, editable=False)
    task = models.CharField(max_length=40, blank=True)
    license = models.CharField(max_length=40, blank=True)
    # From the model card's front matter: datasets, language, base_model (a list, e.g. a
    # merge's parents), base_model_relation (hub.services.card_metadata).
    card_data = models.JSONField(default=dict, blank=True)
    private = models.BooleanField(default=False)
    base_model = models.ForeignKey(BaseModel, on_delete=models.PROTECT, related_name="adapters")
    tags = models.ManyToManyField(Tag, blank=True, related_name="adapters")
    downloads = models.PositiveBigIntegerField(default=0)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)
    current_version = models.ForeignKey(
        "AdapterVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The current version's rank, denormalised for the list's rank filter (indexed with the
    # base model below); save() keeps it in sync with current_version.
    current_r = models.PositiveIntegerField(null=True, blank=True, editable=False)
    # Denormalised for search (see hub.services.search): tags, task, base model, owner.
    search_text = models.TextField(blank=True, editable=False)
    # The words this adapter counts for in SearchWord, space-separated (none while private).
    search_words = models.TextField(blank=True, editable=False)
    # PostgreSQL only (stays NULL on SQLite); refreshed by hub.services.search.adapters_reindex.
    search_vector = SearchVectorField(null=True, editable=False)

    class Meta:
        ordering = ["-downloads", "name"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "name"], name="hub_adapter_unique_owner_name")
        ]
        indexes = [
            models.Index(fields=["-downloads"], name="hub_adapter_downloads"),
            models.Index(fields=["-created"], name="hub_adapter_created"),
            models.Index(fields=["name"], name="hub_adapter_name"),
            # The public list's sort orders, covering the key: deep pages are index-only.
            models.Index(
                fields=["-downloads", "name", "id"],
                condition=models.Q(private=False, current_version__isnull=False),
                name="hub_adapter_public_downloads",
            ),
            models.Index(
                fields=["-created", "name", "id"],
                condition=models.Q(private=False, current_version__isnull=False),
                name="hub_adapter_public_created",
            ),
            # A narrow copy of what the list filters on: counts and tag joins read this
            # index (index-only) instead of the wide rows (card, search columns).
            models.Index(
                fields=["id"],
                include=["base_model", "task", "license", "current_version", "downloads", "name"],
                condition=models.Q(private=False, current_version__isnull=False),
                name="hub_adapter_public_filters",
            ),
            # One base model's adapters in key order, index-only: merged with the through
            # table's (tag, adapter) index (migration 0004) for a base model + tag filter.
            models.Index(
                fields=["base_model", "id"],
                include=["current_version", "downloads", "name", "task", "license"],
                condition=models.Q(private=False, current_version__isnull=False),
                name="hub_adapter_public_base",
            ),
            # A base model's adapters of one rank in key order, index-only: merged with the
            # tag index for a base model + rank + tag filter, no version probed per match.
            models.Index(
                fields=["base_model", "current_r", "id"],
                include=["downloads", "name"],
                condition=models.Q(private=False, current_version__isnull=False),
                name="hub_adapter_public_base_rank",
            ),
        ]

    def __str__(self):
        return self.full_name

    def save(self, *args, **kwargs):
        update_fields = kwargs.get("update_fields")
        if update_fields is None or "current_version" in update_fields:
            version = self.current_version
            self.current_r = version.r if version is not None else None
            if update_fields is not None:
                kwargs["update_fields"] = {*update_fields, "current_r"}
        super().save(*args, **kwargs)

    def get_absolute_url(self):
        return reverse("hub:adapter_detail", args=[self.owner.get_username(), self.name])

    @property
    def full_name(self) -> str:
        return f"{self.owner.get_username()}/{self.name}"


class AdapterVersion(models.Model):
    adapter = models.ForeignKey(Adapter, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()  # 1..n within the adapter
    commit = models.CharField(max_length=40, unique=True)  # stable 40-hex revision id
    message = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created = models.DateTimeField(auto_now_add=True)
    # Read from the files.
    peft_type = models.CharField(max_length=40)
    r = models.PositiveIntegerField()
    lora_alpha = models.FloatField()
    target_modules = models.JSONField(default=list)
    dtype = models.CharField(max_length=20)
    param_count = models.PositiveBigIntegerField()
    config = models.JSONField(default=dict)

    class Meta:
        ordering = ["-number"]
        constraints = [
            models.UniqueConstraint(
                fields=["adapter", "number"], name="hub_adapterversion_unique_number"
            )
        ]
        indexes = [
            models.Index(fields=["r"], name="hub_adapterversion_r"),
            # Lets the rank filter join versions without reading their config JSON.
            models.Index(fields=["id"], include=["r"], name="hub_adapterversion_id_r"),
        ]

    def __str__(self):
        return f"{self.adapter} v{self.number}"

    @property
    def short_commit(self) -> str:
        return self.commit[:7]


class Blob(models.Model):
    """File content, stored once per sha256 through STORAGES["default"]."""

    sha256 = models.CharField(max_length=64, primary_key=True)
    size = models.PositiveBigIntegerField()
    storage_name = models.CharField(max_length=300)
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return self.sha256


class AdapterFile(models.Model):
    version = models.ForeignKey(AdapterVersion, on_delete=models.CASCADE, related_name="files")
    filename = models.CharField(max_length=200)
    blob = models.ForeignKey(Blob, on_delete=models.PROTECT, related_name="files")

    class Meta:
        ordering = ["filename"]
        constraints = [
            models.UniqueConstraint(
                fields=["version", "filename"], name="hub_adapterfile_unique_filename"
            )
        ]

    def __str__(self):
        return f"{self.version}: {self.filename}"

    @property
    def size(self) -> int:
        return self.blob.size

    @property
    def sha256(self) -> str:
        return self.blob.sha256


class BaseModelFile(models.Model):
    """A file of a registered base model, served as a model repository by the Hub API."""

    base_model = models.ForeignKey(BaseModel, on_delete=models.CASCADE, related_name="files")
    filename = models.CharField(max_length=200)
    blob = models.ForeignKey(Blob, on_delete=models.PROTECT, related_name="base_model_files")

    class Meta:
        ordering = ["filename"]
        constraints = [
            models.UniqueConstraint(
                fields=["base_model", "filename"], name="hub_basemodelfile_unique_filename"
            )
        ]

    def __str__(self):
        return f"{self.base_model}: {self.filename}"


class StorageEntry(models.Model):
    """A stored file that the database marks as possibly garbage, the only files a sweep
    may delete (hub.services.storage_ledger).

    An intent is committed before a file is stored and removed in the transaction whose row
    names the file, so a rolled-back upload leaves its intent behind. A tombstone is written
    in the transaction that removes the row naming a file. Names repeat (an insert never
    waits on another's row): a name's newest entry counts."""

    class Kind(models.TextChoices):
        INTENT = "intent", "about to be stored"
        TOMBSTONE = "tombstone", "no longer named"

    name = models.CharField(max_length=300, db_index=True)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    since = models.DateTimeField(db_index=True)

    def __str__(self):
        return f"{self.kind} {self.name}"


class Installation(models.Model):
    """This installation's id, also written into its store: a sweep refuses a store that
    another database marked, or a database that looks empty beside a store that is not."""

    uid = models.CharField(max_length=36, unique=True)
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return self.uid
