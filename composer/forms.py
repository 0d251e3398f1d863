"""The three launch forms. Everything that can be known before running is checked here
(adapters visible to the user, one base model, compatibility by the engine's own check,
example format and limits, parameter ranges), so a job that cannot work is never queued."""

import re

from django import forms

from composer.engine.baselines import DEFAULT_DENSITY, DENSITY_METHODS, METHODS
from composer.engine.knots import DEFAULT_DISJOINT, DEFAULT_SCALING_COEF, KNOTS_METHODS
from composer.engine.lorahub import LoraHubParams
from composer.launch import job_launch, version_label
from composer.models import Job
from composer.publish import lineage_weights
from hub.choices import LICENSES
from hub.models import Adapter, BaseModel
from hub.selectors import adapters_visible

MAX_INPUTS = 32
# "All compatible adapters": at most this many candidates (the most downloaded first), each
# checked from its safetensors header on submit and screened by the worker in chunks.
MAX_SCREENED = 500
# The picker lists the adapters asked for plus at most this many others (the catalog can
# hold 100,000s: listing all of them would make the form unusable).
PICKER_EXTRA = 40


def visible_adapters(user):
    return adapters_visible(user).order_by("-downloads", "name")


class AdapterChoiceField(forms.ModelMultipleChoiceField):
    widget = forms.CheckboxSelectMultiple

    def label_from_instance(self, obj):
        v = obj.current_version
        return f"{obj.full_name} — {obj.base_model.identifier}, r={v.r}, {obj.downloads} downloads"


def check_versions(versions, method: str, base_model=None) -> str | None:
    """The engine's compatibility verdict on the versions, from their safetensors headers
    (no tensors loaded, no files copied), and against the base model's weight shapes when
    its files are known; None when they fit."""
    from composer.engine.compat import IncompatibleAdapters, check_compatible
    from hub.services.shapes import check_fits_base_model, version_shapes

    try:
        adapters = [version_shapes(v, version_label(v)) for v in versions]
        check_compatible(adapters, method=method)
        if base_model is not None:
            check_fits_base_model(adapters, base_model)
    except IncompatibleAdapters as exc:
        return f"These adapters cannot be combined: {exc}"
    return None


class JobForm(forms.Form):
    kind: str
    method = "lorahub"
    adapters = AdapterChoiceField(queryset=Adapter.objects.none(), required=False)
    name = forms.CharField(
        max_length=100,
        required=False,
        label="Job name (optional)",
        help_text="Empty: the job is named after its inputs.",
    )
    min_inputs = 2
    advanced_fields: tuple[str, ...] = ()

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.table_fields = []  # drawn in the adapters' table, not one by one
        self.user = user
        self.fields["name"] = self.fields.pop("name")  # last, before the advanced fields
        field = self.fields["adapters"]
        field.queryset = visible_adapters(user)  # what may be submitted
        field.widget.choices = self.picker_choices(field)  # what is listed
        self.versions = []
        self.base_model = None

    def picker_choices(self, field) -> list[tuple[int, str]]:
        """The requested adapters, then the most downloaded ones for the same base model."""
        raw = self.data.getlist("adapters") if self.is_bound else self.initial.get("adapters")
        wanted = [int(x) for x in raw or [] if str(x).isdecimal()]
        requested = list(field.queryset.filter(pk__in=wanted))
        others = field.queryset.exclude(pk__in=wanted)
        if requested:
            others = others.filter(base_model=requested[0].base_model_id)
        shown = requested + list(others[:PICKER_EXTRA])
        return [(a.pk, field.label_from_instance(a)) for a in shown]

    def chosen_adapters(self, cleaned) -> list:
        return list(cleaned.get("adapters") or [])

    def max_inputs(self, cleaned) -> int:
        return MAX_INPUTS

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        adapters = self.chosen_adapters(cleaned)
        if len(adapters) < self.min_inputs:
            raise forms.ValidationError(f"Choose at least {self.min_inputs} adapters.")
        if len(adapters) > self.max_inputs(cleaned):
            raise forms.ValidationError(f"Choose at most {self.max_inputs(cleaned)} adapters.")
        bases = {a.base_model for a in adapters}
        if len(bases) > 1:
            names = ", ".join(sorted(b.identifier for b in bases))
            raise forms.ValidationError(f"The adapters are for different base models: {names}.")
        self.base_model = bases.pop()
        self.versions = [a.current_version for a in adapters]
        problem = check_versions(self.versions, self.method_name(cleaned), self.base_model)
        if problem:
            raise forms.ValidationError(problem)
        return cleaned

    @property
    def advanced_errors(self) -> bool:
        return any(name in self.errors for name in self.advanced_fields)

    def method_name(self, cleaned) -> str:
        return self.method

    def parameters(self) -> dict:
        raise NotImplementedError

    def launch(self) -> Job:
        return job_launch(
            owner=self.user,
            kind=self.kind,
            versions=self.versions,
            parameters=self.parameters(),
            base_model=self.base_model,
            name=self.cleaned_data.get("name", ""),
            **self.extra_launch_args(),
        )

    def extra_launch_args(self) -> dict:
        return {}


def examples_text(text: str, upload, what: str) -> str:
    """Pasted text, or the uploaded file's text when there is one."""
    from composer.engine.examples import MAX_FILE_BYTES

    if upload is None:
        return text
    if upload.size > MAX_FILE_BYTES:
        raise forms.ValidationError(f"The {what} file is larger than {MAX_FILE_BYTES} bytes.")
    try:
        return upload.read().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise forms.ValidationError(f"The {what} file is not UTF-8 text.") from None


def read_examples(text: str, upload, what: str) -> list:
    """Examples from pasted text or an uploaded file (JSON lines, CSV or tab-separated)."""
    from composer.engine.examples import ExamplesError, parse_examples

    try:
        return parse_examples(examples_text(text, upload, what))
    except ExamplesError as exc:
        raise forms.ValidationError(f"{what.capitalize()}: {exc}") from None


SET_SEPARATOR = re.compile(r"^---[ \t]*\r?$", re.MULTILINE)


def read_example_sets(text: str, upload, what: str) -> list[list]:
    """Sets of examples separated by a line `---` (each set in any of the formats); [] for
    none; at most MAX_CHECK_EXAMPLES in all."""
    from composer.engine.examples import MAX_CHECK_EXAMPLES, ExamplesError, parse_examples

    text = examples_text(text, upload, what)
    if not text.strip():
        return []
    chunks = SET_SEPARATOR.split(text)
    if len(chunks) > 1 and not chunks[-1].strip():
        chunks.pop()  # a separator after the last set
    sets = []
    for i, chunk in enumerate(chunks, 1):
        where = f"{what.capitalize()}, set {i}" if len(chunks) > 1 else what.capitalize()
        try:
            sets.append(parse_examples(chunk, max_examples=MAX_CHECK_EXAMPLES))
        except ExamplesError as exc:
            raise forms.ValidationError(f"{where}: {exc}") from None
        if sum(map(len, sets)) > MAX_CHECK_EXAMPLES:
            raise forms.ValidationError(
                f"{what.capitalize()}: more than {MAX_CHECK_EXAMPLES} examples in all."
            )
    return sets


def base_model_unavailable(base_model) -> str | None:
    """Why the workers cannot run `base_model`, or None."""
    if base_model.commit or base_model.local_path:
        return None
    return (
        f"The base model {base_model.identifier} is not available to the workers: "
        "its files are not registered on this hub."
    )


MAX_SEPARATOR = 16
OPTIMIZERS = ["NGOpt", "OnePlusOne", "TwoPointsDE", "CMA", "PSO", "RandomSearch"]
EXAMPLES_HELP = (
    'One example per line: JSON lines ({"input": ..., "output": ...}), CSV or tab-separated '
    "input/output."
)


class LoraHubForm(JobForm):
    kind = Job.Kind.LORAHUB
    advanced_fields = ("mode", "top_k", "budget", "seed", "optimizer", "separator")

    candidates = forms.ChoiceField(
        choices=[
            ("all", f"Every compatible adapter I can see (up to {MAX_SCREENED}), screened"),
            ("pick", "The adapters I pick"),
            ("top", "The N most downloaded compatible"),
        ],
        initial="all",
        widget=forms.RadioSelect,
        label="Candidates",
        help_text="Screened: each public adapter (and each of yours) for the base model is "
        "tried alone on your examples and the K best are mixed.",
    )
    base_model = forms.ModelChoiceField(
        queryset=BaseModel.objects.exclude(local_path="", commit=""),
        required=False,
        help_text="For “every compatible” and “the N most downloaded”: the base model the "
        "adapters must be trained for.",
    )
    top_n = forms.IntegerField(min_value=2, max_value=MAX_INPUTS, initial=5, label="N")
    examples = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6}),
        required=False,
        label="Few-shot examples",
        help_text=EXAMPLES_HELP,
    )
    examples_file = forms.FileField(required=False, label="…or upload them")
    heldout = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        label="Held-out examples (optional)",
        help_text="Evaluated with the base model and with the result when the job ends.",
    )
    heldout_file = forms.FileField(required=False, label="…or upload them")
    mode = forms.ChoiceField(
        choices=[
            ("screen", "Screen every candidate, then search from the best (recommended)"),
            ("reference", "The LoraHub paper's search, from all weights at 0"),
        ],
        initial="screen",
        required=False,
        label="Search",
        help_text="Screening tries each candidate alone on your examples; the search then "
        "mixes the K best, starting from the best one, and keeps a mix only when it beats that "
        "one on your examples with any one of them left out.",
    )
    top_k = forms.IntegerField(
        min_value=1,
        max_value=MAX_INPUTS,
        initial=LoraHubParams.top_k,
        required=False,
        label="K (screening: candidates mixed)",
    )
    budget = forms.IntegerField(
        min_value=1,
        max_value=1000,
        initial=40,
        help_text="Evaluations on your examples, one per screened candidate included.",
    )
    seed = forms.IntegerField(min_value=0, max_value=2**31 - 1, initial=0)
    optimizer = forms.ChoiceField(choices=[(o, o) for o in OPTIMIZERS], initial="NGOpt")
    separator = forms.CharField(
        required=False,
        strip=False,
        max_length=MAX_SEPARATOR,
        help_text="Decoder-only base models: text put between each input and its output, "
        "such as “ = ” (leave it empty when the inputs already end with one).",
    )

    field_order = ["candidates", "adapters", "base_model", "top_n", "examples"]

    def clean_examples(self):
        upload = self.files.get("examples_file")
        text = self.cleaned_data.get("examples", "")
        if not text.strip() and upload is None:
            raise forms.ValidationError("Paste or upload a few examples of the task.")
        return read_examples(text, upload, "examples")

    def clean_heldout(self):
        upload = self.files.get("heldout_file")
        text = self.cleaned_data.get("heldout", "")
        if not text.strip() and upload is None:
            return []
        return read_examples(text, upload, "held-out examples")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.initial.get("adapters"):  # sent here with adapters: those are the candidates
            self.fields["candidates"].initial = "pick"
        bases = list(self.fields["base_model"].queryset[:2])
        if len(bases) == 1 and not self.initial.get("base_model"):  # the only choice
            self.fields["base_model"].initial = bases[0]

    def chosen_adapters(self, cleaned) -> list:
        how = cleaned.get("candidates")
        if how == "pick":
            return super().chosen_adapters(cleaned)
        base = cleaned.get("base_model")
        if base is None:
            raise forms.ValidationError("Choose the base model the candidates are trained for.")
        if how == "all":
            if cleaned.get("mode") == "reference":
                raise forms.ValidationError(
                    f"The paper's search mixes at most {MAX_INPUTS} adapters: screen every "
                    "compatible one, or pick the candidates."
                )
            return top_compatible(self.user, base, MAX_SCREENED, scan=MAX_SCREENED)
        return top_compatible(self.user, base, cleaned["top_n"])

    def max_inputs(self, cleaned) -> int:
        return MAX_SCREENED if cleaned.get("candidates") == "all" else MAX_INPUTS

    def clean(self):
        cleaned = super().clean()
        problem = None if self.errors else base_model_unavailable(self.base_model)
        if problem:
            raise forms.ValidationError(problem)
        return cleaned

    def parameters(self) -> dict:
        c = self.cleaned_data
        params = {"budget": c["budget"], "seed": c["seed"], "optimizer": c["optimizer"]}
        mode = c["mode"] or LoraHubParams.mode
        params |= {"mode": mode} | (
            {"top_k": c["top_k"] or LoraHubParams.top_k} if mode == "screen" else {}
        )
        return params | ({"separator": c["separator"]} if c["separator"] else {})

    def extra_launch_args(self) -> dict:
        return {"examples": self.cleaned_data["examples"], "heldout": self.cleaned_data["heldout"]}


def top_compatible(user, base_model, n: int, *, scan: int | None = None) -> list:
    """The `n` most downloaded adapters `user` can see for `base_model` that fit with the
    first, among the `scan` (4n by default) most downloaded: one header read each."""
    from composer.engine.compat import IncompatibleAdapters, check_compatible
    from hub.services.shapes import version_shapes

    chosen, first = [], None
    for adapter in visible_adapters(user).filter(base_model=base_model)[: scan or 4 * n]:
        try:
            loaded = version_shapes(adapter.current_version, adapter.full_name)
            if first is not None:
                check_compatible([first, loaded])
        except IncompatibleAdapters:
            continue
        first = first or loaded
        chosen.append(adapter)
        if len(chosen) == n:
            break
    return chosen


class MergeExamplesForm(JobForm):
    """A merge scored on optional examples: each parent and the result, by exact match."""

    examples = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        required=False,
        label="Examples to score the parents and the merge on (optional)",
        help_text=EXAMPLES_HELP
        + " One set for all the adapters, or one set per adapter in the order listed, "
        "separated by a line ---.",
    )
    examples_file = forms.FileField(required=False, label="…or upload them")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("examples", "examples_file"):  # after the method's own fields
            self.fields[name] = self.fields.pop(name)

    def clean_examples(self):
        upload = self.files.get("examples_file")
        return read_example_sets(self.cleaned_data.get("examples", ""), upload, "examples")

    def clean(self):
        cleaned = super().clean()
        sets = cleaned.get("examples")
        if self.errors or not sets:
            return cleaned
        n = len(self.versions)
        if len(sets) not in (1, n):
            self.add_error(
                "examples",
                f"{len(sets)} sets of examples for {n} adapters: give one set for all of "
                "them, or one per adapter.",
            )
        problem = base_model_unavailable(self.base_model)
        if problem:
            self.add_error("examples", problem)
        return cleaned

    def extra_launch_args(self) -> dict:
        return {"example_sets": self.cleaned_data.get("examples") or []}


class LegoForm(MergeExamplesForm):
    kind = Job.Kind.LEGO
    method = "lego"
    advanced_fields = ()
    min_inputs = 1

    k = forms.IntegerField(
        min_value=1,
        max_value=4096,
        required=False,
        label="Merged rank k",
        help_text="Clusters of rank-one units; empty: the largest input rank.",
    )
    param_reweight = forms.BooleanField(
        required=False, initial=True, label="Parameter reweighting (restore the units' norms)"
    )
    output_reweight = forms.BooleanField(
        required=False, initial=True, label="Output reweighting (scale by √(r/k))"
    )
    units = forms.ChoiceField(
        required=False,
        initial="svd",
        label="Rank-one units",
        choices=[
            ("svd", "each input's singular directions (recommended)"),
            ("raw", "the stored rows of A and columns of B, as the paper"),
        ],
        help_text="The stored factors of a LoRA are one arbitrary basis of its update: "
        "clustering them can lose what each adapter does.",
    )
    centroid = forms.ChoiceField(
        required=False,
        initial="mean",
        label="A cluster's unit",
        choices=[
            ("mean", "the mean of its members, as the paper"),
            ("rank1", "the best rank-one approximation of their sum (closer to the exact sum)"),
        ],
    )

    def clean(self):
        cleaned = super().clean()
        cleaned["units"] = cleaned.get("units") or "svd"
        cleaned["centroid"] = cleaned.get("centroid") or "mean"
        k = cleaned.get("k")
        if not self.errors and k is not None:
            total = sum(v.r for v in self.versions)
            if k > total:
                raise forms.ValidationError(
                    f"k = {k} is more than the {total} rank-one units of the inputs."
                )
        return cleaned

    def parameters(self) -> dict:
        c = self.cleaned_data
        params = {
            "param_reweight": c["param_reweight"],
            "output_reweight": c["output_reweight"],
            "units": c["units"],
            "centroid": c["centroid"],
        }
        if c.get("k") is not None:
            params["k"] = c["k"]
        return params


RANK_METHODS = {m for m in METHODS if m.endswith("svd") or m.startswith(("knots", "task"))}
MERGE_LABELS = {
    "linear": "linear (peft: A and B mixed separately)",
    "cat": "cat (peft: exact, rank Σ r)",
    "task_arithmetic": "task arithmetic (exact, in ΔW space)",
    "knots_ties": "KnOTS-TIES (TIES in the updates' shared SVD basis)",
    "knots_dare_ties": "KnOTS-DARE-TIES (DARE-TIES in the updates' shared SVD basis)",
}


MAX_WEIGHT = 1000.0
# KnOTS's scaling coefficient λ: the authors search 0.1 to 1; past 10 a merge only amplifies.
MIN_SCALING_COEF, MAX_SCALING_COEF = 0.1, 10.0


def weight_field(adapter_pk) -> str:
    return f"weight_{adapter_pk}"


class MergeForm(MergeExamplesForm):
    kind = Job.Kind.MERGE
    advanced_fields = ()

    merge_method = forms.ChoiceField(
        choices=[(m, MERGE_LABELS.get(m, f"{m} (peft)")) for m in METHODS],
        initial="linear",
        label="Method",
    )
    density = forms.FloatField(
        min_value=0.0,
        max_value=1.0,
        required=False,
        initial=DEFAULT_DENSITY,
        help_text="Fraction of each update's values kept, for ties, dare_*, magnitude_prune "
        "and KnOTS (one for all the adapters).",
    )

    rank = forms.IntegerField(
        min_value=1,
        max_value=4096,
        required=False,
        help_text="For the svd methods, task arithmetic and KnOTS: the result's rank "
        "(empty: the largest input rank, or Σ r for task arithmetic).",
    )
    scaling_coef = forms.FloatField(
        min_value=MIN_SCALING_COEF,
        max_value=MAX_SCALING_COEF,
        required=False,
        initial=DEFAULT_SCALING_COEF,
        label="Scaling coefficient λ",
        help_text="KnOTS: the merged update is multiplied by λ (empty: "
        f"{DEFAULT_SCALING_COEF:g}, the best on our merge suite).",
    )
    disjoint = forms.ChoiceField(
        required=False,
        initial=DEFAULT_DISJOINT,
        label="Agreeing values",
        choices=[
            ("mean", "their mean, as TIES and KnOTS"),
            ("sum", "their sum (kept every task better on our merge suite)"),
        ],
        help_text="KnOTS: how the values that agree with the elected sign are combined.",
    )

    def method_name(self, cleaned) -> str:
        return cleaned.get("merge_method", "linear")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # One weight field per listed adapter, beside its checkbox. FloatField refuses
        # NaN and infinities; the bound keeps a merge's numbers sane.
        for pk, label in self.fields["adapters"].widget.choices:
            label = f"Weight of {label.split(' — ')[0]}"
            attrs = {"step": "any", "placeholder": "1/N", "aria-label": label}
            self.fields[weight_field(pk)] = forms.FloatField(
                required=False,
                min_value=-MAX_WEIGHT,
                max_value=MAX_WEIGHT,
                label=label,
                widget=forms.NumberInput(attrs=attrs),
            )
            self.table_fields.append(weight_field(pk))

    def adapter_rows(self) -> list[tuple]:
        """(checkbox, weight field) per listed adapter, for the form's table."""
        boxes = self["adapters"].subwidgets
        return [(box, self[weight_field(box.data["value"])]) for box in boxes]

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        given = [cleaned.get(weight_field(v.adapter_id)) for v in self.versions]
        if all(w is None for w in given):
            cleaned["weights"] = None
        elif any(w is None for w in given):
            pairs = zip(self.versions, given, strict=True)
            missing = [version_label(v) for v, w in pairs if w is None]
            raise forms.ValidationError(
                "Give a weight to every chosen adapter, or to none (1/N each). "
                f"Missing: {', '.join(missing)}."
            )
        else:
            cleaned["weights"] = given
        method, density = cleaned["merge_method"], cleaned.get("density")
        if method in DENSITY_METHODS and not density:
            self.add_error("density", f"{method} needs a density between 0 and 1.")
        return cleaned

    def parameters(self) -> dict:
        c = self.cleaned_data
        params = {"method": c["merge_method"]}
        if c["merge_method"] in DENSITY_METHODS:
            params["density"] = c["density"]
        if c.get("rank") and c["merge_method"] in RANK_METHODS:
            params["rank"] = c["rank"]
        if c["merge_method"] in KNOTS_METHODS:
            params["scaling_coef"] = c.get("scaling_coef") or DEFAULT_SCALING_COEF
            params["disjoint"] = c.get("disjoint") or DEFAULT_DISJOINT
        return params

    def extra_launch_args(self) -> dict:
        n = len(self.versions)
        weights = self.cleaned_data.get("weights") or [1.0 / n] * n
        return super().extra_launch_args() | {"weights": weights}


FORMS = {Job.Kind.LORAHUB: LoraHubForm, Job.Kind.LEGO: LegoForm, Job.Kind.MERGE: MergeForm}


class PublishForm(forms.Form):
    name = forms.SlugField(max_length=96, help_text="The new adapter's name in your namespace.")
    license = forms.ChoiceField(choices=[("", "Not specified"), *LICENSES], required=False)
    private = forms.BooleanField(required=False, label="Private")

    def __init__(self, *args, job, **kwargs):
        super().__init__(*args, **kwargs)
        self.job = job
        self.fields["name"].initial = f"{job.kind}-job{job.pk}"
        licenses = parent_licenses(job)
        field = self.fields["license"]
        if len(licenses) == 1 and "" not in licenses:
            field.initial = licenses.pop()
            field.help_text = "Proposed: the license of every parent."
        elif licenses - {""}:
            shown = ", ".join(sorted(lic or "none" for lic in licenses))
            field.help_text = (
                f"The parents' licenses differ ({shown}): choose one that all of them allow."
            )


def parent_licenses(job) -> set[str]:
    """The licenses of the job's inputs that carry weight (a screened search gives the
    others 0) and are still in the catalog."""
    inputs = job.inputs.select_related("version__adapter")
    return {
        i.version.adapter.license
        for i, weight in zip(inputs, lineage_weights(job), strict=True)
        if i.version and weight != 0
    }
