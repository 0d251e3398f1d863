"""Jobs: one row per composition or merge, the source of truth for status and progress.

The Celery message only carries the job id. Everything a user sees (status, progress,
per-step history, result, error, timings, where it ran) lives here, so a lost message or
a dead worker never loses the story of a job.
"""

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone


class Job(models.Model):
    class Kind(models.TextChoices):
        LORAHUB = "lorahub", "LoraHub composition"
        LEGO = "lego", "LoRA-LEGO merge"
        MERGE = "merge", "Baseline merge"

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"

    FINISHED = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="jobs"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    # The user's name for the job, or the task's (a link can preset it), or one made from
    # the inputs (composer.summary.job_default_name).
    name = models.CharField(max_length=100, blank=True)
    base_model = models.ForeignKey(
        "hub.BaseModel", null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs"
    )
    # What the engine is asked for: method parameters as the form cleaned them.
    parameters = models.JSONField(default=dict, blank=True)
    # Few-shot and held-out examples as [{"input": ..., "output": ...}] (LoraHub only).
    examples = models.JSONField(default=list, blank=True)
    heldout = models.JSONField(default=list, blank=True)

    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True
    )
    step = models.PositiveIntegerField(default=0)
    budget = models.PositiveIntegerField(default=0)
    best_loss = models.FloatField(null=True, blank=True)
    # Per-step history: [{"step", "loss", "best_loss", "weights"}], the step's weights as
    # {"input position": weight}, non-zeros only (rows written before that hold a list).
    history = models.JSONField(default=list, blank=True)
    weights = models.JSONField(default=list, blank=True)  # weights of the latest step
    best_weights = models.JSONField(default=list, blank=True)
    result = models.JSONField(null=True, blank=True)
    result_file = models.FileField(upload_to="jobs/", max_length=300, blank=True)
    error = models.TextField(blank=True)
    # What the worker is doing before the engine starts, e.g. downloading the base model.
    phase = models.CharField(max_length=200, blank=True)
    # Why a queued job waits, when a worker declined it (too little disk or memory).
    waiting = models.CharField(max_length=300, blank=True)
    # Things that happened to the job that the user should know (e.g. a worker restart).
    notes = models.JSONField(default=list, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    # When the job last entered the queue (at launch, or re-queued after a dead worker):
    # the queue's order and the wait shown to the user start here.
    queued_at = models.DateTimeField(default=timezone.now)
    # When its message last went to the broker; None while the broker could not be reached.
    sent_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    # Who holds the job while it runs: host name and pid of the worker child, and device.
    worker_host = models.CharField(max_length=255, blank=True)
    worker_pid = models.PositiveIntegerField(null=True, blank=True)
    device = models.CharField(max_length=32, blank=True)
    task_id = models.CharField(max_length=64, blank=True)
    # The hard time limit (seconds) of the worker running the job: past it, the job failed.
    time_limit = models.PositiveIntegerField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    # Attempts that ended because their worker was stopped (a restart or deploy): they do
    # not count against COMPOSER_JOB_MAX_ATTEMPTS, unlike a worker killed without warning.
    restarts = models.PositiveSmallIntegerField(default=0)
    # The worker holding the current attempt was asked to stop (it saves and gives the job
    # back, or is killed after its stop grace: either way a restart, not a failure).
    worker_stopping = models.BooleanField(default=False)
    # A LoraHub search's progress (composer.engine.checkpoint, JSON, never pickled), saved
    # every COMPOSER_CHECKPOINT_SECONDS while it runs: the next attempt resumes from it.
    checkpoint = models.JSONField(null=True, blank=True)
    cancel_requested = models.BooleanField(default=False)
    # The catalog adapter version the result was published as.
    published_version = models.ForeignKey(
        "hub.AdapterVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["owner", "-created_at"]),
            models.Index(fields=["status", "queued_at"], name="composer_job_queue"),
        ]

    def __str__(self) -> str:
        return f"{self.name or self.get_kind_display()} #{self.pk} ({self.status})"

    def get_absolute_url(self) -> str:
        return reverse("composer:detail", args=[self.pk])

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def waited_seconds(self) -> float:
        """How long the job has been waiting in the queue (since it was last queued)."""
        from django.utils import timezone

        return max(0.0, (timezone.now() - self.queued_at).total_seconds())

    @property
    def elapsed_seconds(self) -> float | None:
        from django.utils import timezone

        if self.started_at is None:
            return None
        end = self.finished_at or timezone.now()
        return (end - self.started_at).total_seconds()


class JobInput(models.Model):
    """One adapter version a job works on, in the order the engine receives them."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="inputs")
    position = models.PositiveSmallIntegerField()
    version = models.ForeignKey(
        "hub.AdapterVersion", null=True, on_delete=models.SET_NULL, related_name="job_inputs"
    )
    label = models.CharField(max_length=200)  # "owner/name v3", kept if the version goes away
    weight = models.FloatField(null=True, blank=True)  # a user-given weight (baseline merges)

    class Meta:
        ordering = ["job", "position"]
        constraints = [
            models.UniqueConstraint(fields=["job", "position"], name="composer_jobinput_position")
        ]

    def __str__(self) -> str:
        return self.label


class Lineage(models.Model):
    """A published adapter version came from these parents, with these weights and method."""

    child = models.ForeignKey(
        "hub.AdapterVersion", on_delete=models.CASCADE, related_name="lineage_parents"
    )
    parent = models.ForeignKey(
        "hub.AdapterVersion", null=True, on_delete=models.SET_NULL, related_name="lineage_children"
    )
    parent_label = models.CharField(max_length=200)
    position = models.PositiveSmallIntegerField()
    weight = models.FloatField(null=True, blank=True)
    method = models.CharField(max_length=40)
    parameters = models.JSONField(default=dict, blank=True)
    job = models.ForeignKey(Job, null=True, on_delete=models.SET_NULL, related_name="lineage")

    class Meta:
        ordering = ["child", "position"]
        constraints = [
            models.UniqueConstraint(fields=["child", "position"], name="composer_lineage_position")
        ]

    def __str__(self) -> str:
        return f"{self.child} <- {self.parent_label}"


class Trial(models.Model):
    """One "Try it": an input run through the base model alone and with an adapter (a
    catalog version, or a finished job's result), on the workers' fast lane."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="trials"
    )
    version = models.ForeignKey(
        "hub.AdapterVersion", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    job = models.ForeignKey(
        Job, null=True, blank=True, on_delete=models.CASCADE, related_name="trials"
    )
    base_model = models.ForeignKey("hub.BaseModel", on_delete=models.CASCADE, related_name="+")
    text = models.TextField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    base_output = models.TextField(blank=True)
    adapter_output = models.TextField(blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["owner", "-created_at"]),
            # The fast lane's queue order and its settling read the waiting and running ones.
            models.Index(
                fields=["status", "created_at"],
                name="composer_trial_active",
                condition=models.Q(status__in=["queued", "running"]),
            ),
        ]

    def __str__(self) -> str:
        return f"Trial #{self.pk} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.FAILED)


class WorkerBeat(models.Model):
    """A job worker's own heartbeat: when it last looked at its health, what it found, and
    whether it takes jobs (`problem` empty) or declines them (why)."""

    # Host name and work folder: what tells two machines apart.
    name = models.CharField(max_length=600, unique=True)
    host = models.CharField(max_length=255)
    beat_at = models.DateTimeField()
    free_disk = models.BigIntegerField(null=True, blank=True)
    free_memory = models.BigIntegerField(null=True, blank=True)
    problem = models.CharField(max_length=300, blank=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.problem or 'healthy'})"
