"""The access-token section of the user's settings."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from hub.forms import form_status

from .forms import TokenForm
from .tokens import token_create, token_revoke


@never_cache
@login_required
def token_list(request):
    plain = None
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            token, plain = token_create(user=request.user, **form.cleaned_data)
        except ValidationError as error:
            form.add_error(None, error)
        else:
            # The plain token is rendered in this response only (never stored, never put
            # in a cookie-backed message), so it is shown exactly once.
            form = TokenForm()
    return render(
        request,
        "hfapi/tokens.html",
        {
            "form": form,
            "new_token": plain,
            "tokens": request.user.access_tokens.all(),
            "hub_endpoint": request.build_absolute_uri("/").rstrip("/"),
        },
        status=form_status(form),
    )


@require_POST
@login_required
def token_delete(request, token_id: int):
    if token_revoke(user=request.user, token_id=token_id):
        messages.success(request, "Token revoked.")
    else:
        messages.error(request, "No such token.")
    return redirect("hfapi:tokens")
