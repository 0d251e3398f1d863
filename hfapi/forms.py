from django import forms

from .models import TOKEN_MAX_CHARS, AccessToken


class TokenForm(forms.Form):
    name = forms.CharField(max_length=80, help_text="What the token is for, e.g. “laptop”.")
    scope = forms.ChoiceField(
        choices=AccessToken.SCOPES,
        initial=AccessToken.READ,
        widget=forms.RadioSelect,
        help_text="Read: download your private adapters. Write: also publish and delete.",
    )


class ImportForm(forms.Form):
    source = forms.CharField(
        label="Repository on the Hugging Face Hub",
        max_length=250,
        help_text="owner/name, optionally @revision (a branch, tag or commit).",
    )
    name = forms.CharField(
        label="Name here", max_length=96, required=False, help_text="Defaults to the same name."
    )
    token = forms.CharField(
        label="Token",
        required=False,
        max_length=TOKEN_MAX_CHARS,
        widget=forms.PasswordInput,
        help_text="Only for private repositories; used for this import and deleted when it ends.",
    )


class PushForm(forms.Form):
    repo_id = forms.CharField(
        label="Repository on the Hugging Face Hub", max_length=200, help_text="owner/name"
    )
    token = forms.CharField(
        label="Write token",
        max_length=TOKEN_MAX_CHARS,
        widget=forms.PasswordInput,
        help_text="A write token for that hub; used for this push and deleted when it ends.",
    )
    private = forms.BooleanField(required=False, label="Create it as private")
