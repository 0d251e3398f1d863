"""Download counts that one client cannot inflate: a download of an adapter file counts
once per client and file per day (the Hugging Face Hub counts once per client and file
per period too). A client is its account when logged in, else its address (the one the
proxy saw, with LORAHUB_PROXY_HOPS proxies in front)."""

import hashlib

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from ..models import Adapter, DownloadMark
from .throttle import client_address


def client_id(request) -> str:
    if request.user.is_authenticated:
        return f"user:{request.user.pk}"
    return f"address:{client_address(request)}"


def adapter_download_record(adapter: Adapter, request, filename: str) -> bool:
    """Count a download of `filename` unless this client already did today; True if
    counted. Marks of earlier days are dropped on the way."""
    today = timezone.now().date()
    key = hashlib.sha256(f"{client_id(request)}|{adapter.pk}|{filename}|{today}".encode())
    try:
        with transaction.atomic():
            DownloadMark.objects.create(key=key.hexdigest(), day=today)
    except IntegrityError:
        return False
    Adapter.objects.filter(pk=adapter.pk).update(downloads=F("downloads") + 1)
    DownloadMark.objects.filter(day__lt=today).delete()
    return True
