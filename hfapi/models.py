from django.conf import settings
from django.db import models

TOKEN_MAX_CHARS = 500  # an upstream token of an import or push (Hugging Face's: 37)


class AccessToken(models.Model):
    """A personal access token for the Hub API, shown once and stored as its sha256.

    `read` tokens see the owner's private adapters; `write` tokens may also create,
    change and delete them.
    """

    READ = "read"
    WRITE = "write"
    SCOPES = [(READ, "Read"), (WRITE, "Write")]

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="access_tokens"
    )
    name = models.CharField(max_length=80)
    scope = models.CharField(max_length=5, choices=SCOPES, default=READ)
    # sha256 hex of the whole token; the token itself is never stored.
    token_hash = models.CharField(max_length=64, unique=True)
    # First characters, so the owner can tell tokens apart ("hf_AbCd…").
    prefix = models.CharField(max_length=12)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.scope}, {self.prefix}…)"

    @property
    def can_write(self) -> bool:
        return self.scope == self.WRITE


class RepoReservation(models.Model):
    """A repository created through the API that has no version yet.

    The catalog's adapters always have a base model and valid files, both known only once
    files arrive; `create_repo` therefore reserves the name here, and the first commit
    creates the adapter (through the catalog's upload service) and drops the reservation.
    """

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="repo_reservations"
    )
    name = models.CharField(max_length=96)
    private = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["owner", "name"], name="hfapi_reservation_unique")
        ]

    def __str__(self) -> str:
        return f"{self.owner.get_username()}/{self.name} (empty)"


class AdapterSource(models.Model):
    """Where an imported adapter came from: the upstream hub, repository and commit."""

    adapter = models.OneToOneField("hub.Adapter", on_delete=models.CASCADE, related_name="source")
    endpoint = models.URLField()
    repo_id = models.CharField(max_length=200)
    revision = models.CharField(max_length=64)
    imported_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.endpoint}/{self.repo_id}@{self.revision}"


class Transfer(models.Model):
    """An import from, or a push to, an upstream hub, run as a job on a worker. The upstream
    token waits here, never in the broker's message, and is emptied when the transfer ends."""

    class Kind(models.TextChoices):
        IMPORT = "import", "Import from Hugging Face"
        PUSH = "push", "Push to Hugging Face"

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="transfers"
    )
    kind = models.CharField(max_length=8, choices=Kind.choices)
    endpoint = models.CharField(max_length=300)
    # Import: the upstream `repo[@revision]` and the name here; push: the upstream repo.
    repo_id = models.CharField(max_length=250)
    name = models.CharField(max_length=96, blank=True)
    private = models.BooleanField(default=False)
    version = models.ForeignKey(
        "hub.AdapterVersion", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    progress = models.CharField(max_length=200, blank=True)
    error = models.TextField(blank=True)
    adapter = models.ForeignKey(
        "hub.Adapter", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    url = models.URLField(max_length=500, blank=True)
    token = models.CharField(max_length=TOKEN_MAX_CHARS, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)  # renewed while it runs

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # The transfer lane's queue order and its settling read the waiting and running.
            models.Index(
                fields=["status", "created_at"],
                name="hfapi_transfer_active",
                condition=models.Q(status__in=["queued", "running"]),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.FAILED)


class XetXorb(models.Model):
    """A user's upload of a xorb, counted against their storage quota while the xorb is kept.

    Xorbs are stored once, by content, under `hfapi-xet/xorbs/`; this row says who sent one
    and when, so its bytes count for every user who relies on it (hfapi.xet.ledger)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="xet_xorbs"
    )
    xorb = models.CharField(max_length=64)  # the xorb hash, hex
    size = models.BigIntegerField()  # serialized bytes, as stored
    uploaded_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "xorb"], name="hfapi_xetxorb_unique")
        ]

    def __str__(self) -> str:
        return f"xorb {self.xorb[:12]}… of {self.user_id} ({self.size} bytes)"
