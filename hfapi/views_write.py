"""Write endpoints: create and delete repositories, preupload, commit."""

from django.http import JsonResponse

from .responses import ApiError, api_view


@api_view(("POST",))
def validate_yaml(request, auth):
    return JsonResponse({"errors": [], "warnings": []})


@api_view(("POST",))
def repo_create(request, auth):
    raise ApiError(501, "todo")


@api_view(("DELETE",))
def repo_delete(request, auth):
    raise ApiError(501, "todo")


@api_view(("POST",))
def preupload(request, auth, owner, name, revision):
    raise ApiError(501, "todo")


@api_view(("POST",))
def commit(request, auth, owner, name, revision):
    raise ApiError(501, "todo")


@api_view(("GET", "POST"))
def xet_token(request, auth, owner, name, revision):
    raise ApiError(501, "todo")
