from django import forms

from .models import AccessToken


class TokenForm(forms.Form):
    name = forms.CharField(max_length=80, help_text="What the token is for, e.g. “laptop”.")
    scope = forms.ChoiceField(
        choices=AccessToken.SCOPES,
        initial=AccessToken.READ,
        widget=forms.RadioSelect,
        help_text="Read: download your private adapters. Write: also publish and delete.",
    )
