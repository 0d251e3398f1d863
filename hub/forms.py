import re

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm, UserCreationForm
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError

from .choices import LICENSES, TASKS
from .services.adapters import ADAPTER_NAME, tags_parse
from .services.cards import card_check
from .services.namespaces import name_reserved
from .services.throttle import (
    login_check,
    login_failed,
    login_succeeded,
    signup_check,
    signup_record,
)

USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,38}")


def form_status(form) -> int:
    """The status of a page that shows `form`: 400 when a submission was refused (the page
    shows why), 429 when a throttle refused it, 200 for a blank or unsubmitted form."""
    if not form.errors:
        return 200
    return 429 if form.has_error(NON_FIELD_ERRORS, "throttled") else 400


class ThrottledLogin:
    """Log-in forms refuse an account and address with too many recent failures, before
    checking the password, count each failure and remember the addresses that succeed."""

    def clean(self):
        username = str(self.data.get("username", ""))
        login_check(self.request, username)
        try:
            cleaned = super().clean()
        except ValidationError as exc:
            if getattr(exc, "code", None) == "invalid_login":
                login_failed(self.request, username)
            raise
        login_succeeded(self.request, username)
        return cleaned


class LoginForm(ThrottledLogin, AuthenticationForm):
    pass


class AdminLoginForm(ThrottledLogin, AdminAuthenticationForm):
    pass


class SignupForm(UserCreationForm):
    """Sign-up, at most LORAHUB_SIGNUPS_PER_HOUR accounts an hour from one address."""

    class Meta(UserCreationForm.Meta):
        model = get_user_model()
        fields = ("username", "email")

    def __init__(self, request, *args, **kwargs):
        self.request = request
        super().__init__(*args, **kwargs)

    def clean(self):
        signup_check(self.request)
        return super().clean()

    def save(self, commit=True):
        user = super().save(commit)
        signup_record(self.request)
        return user

    def clean_username(self):
        username = self.cleaned_data["username"]
        if not USERNAME.fullmatch(username):
            raise ValidationError(
                "Use letters, digits, '-' and '_' (at most 39), starting with a letter or digit."
            )
        if name_reserved(username):
            raise ValidationError("That name is reserved; please pick another.")
        if get_user_model().objects.filter(username__iexact=username).exists():
            raise ValidationError("That username is taken.")
        return username


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault(
            "widget", MultipleFileInput(attrs={"accept": ".json,.safetensors,.md,.zip"})
        )
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        if not data:
            raise ValidationError(self.error_messages["required"], code="required")
        items = data if isinstance(data, list | tuple) else [data]
        return [super(MultipleFileField, self).clean(item, initial) for item in items]


FILES_HELP = (
    "adapter_config.json and adapter_model.safetensors as save_pretrained writes them "
    "(README.md optional: it becomes the model card), or one .zip of that folder."
)


class AdapterMetaFields(forms.Form):
    """What the owner declares; the rest is read from the files."""

    task = forms.ChoiceField(choices=[("", "From the adapter's task type"), *TASKS], required=False)
    license = forms.ChoiceField(choices=[("", "Not specified"), *LICENSES], required=False)
    tags = forms.CharField(
        required=False, help_text="Comma- or space-separated, e.g. summarization, news"
    )
    private = forms.BooleanField(required=False, help_text="Only you can see a private adapter.")

    def clean_tags(self):
        return tags_parse(self.cleaned_data["tags"])


class AdapterCreateForm(AdapterMetaFields):
    name = forms.CharField(max_length=96, help_text="e.g. flan-t5-news-summarizer")
    files = MultipleFileField(help_text=FILES_HELP)
    base_model = forms.CharField(
        max_length=200,
        required=False,
        help_text="Identifier such as google/flan-t5-large; empty: taken from adapter_config.json.",
    )
    description = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 5}),
        required=False,
        validators=[card_check],
        help_text="Model card in Markdown, used when no README.md is uploaded.",
    )
    field_order = [
        "name",
        "files",
        "base_model",
        "task",
        "license",
        "tags",
        "private",
        "description",
    ]

    def clean_name(self):
        name = self.cleaned_data["name"]
        if not ADAPTER_NAME.fullmatch(name):
            raise ValidationError(
                "Use letters, digits, '.', '_' and '-', starting with a letter or digit."
            )
        return name


class AdapterVersionForm(forms.Form):
    files = MultipleFileField(help_text=FILES_HELP)
    message = forms.CharField(
        max_length=500, required=False, help_text="What changed, e.g. trained 2 more epochs"
    )


class AdapterEditForm(AdapterMetaFields):
    task = forms.ChoiceField(choices=[("", "Not specified"), *TASKS], required=False)
    description = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 14}),
        required=False,
        help_text="Markdown",
        validators=[card_check],
    )
    field_order = ["description", "task", "license", "tags", "private"]
