"""Who uploaded which xorb: a xorb's bytes count against each uploader's storage quota for
as long as it is kept (KEEP), whoever stored it first."""

from datetime import timedelta

from django.db.models import Sum
from django.utils import timezone

from ..models import XetXorb

# hf_xet keeps the shards it uploaded for 3 weeks and deduplicates new files against the
# xorbs they list without sending them again, so a xorb must outlive that.
KEEP = timedelta(days=28)


def kept(user_id: int):
    """The user's xorb records still counted (younger than KEEP)."""
    return XetXorb.objects.filter(user_id=user_id, uploaded_at__gte=timezone.now() - KEEP)


def kept_bytes(user_id: int) -> int:
    return kept(user_id).aggregate(total=Sum("size"))["total"] or 0


def clear_stale(before) -> int:
    """Delete the records of uploads made before `before` (the xorbs go with them)."""
    return XetXorb.objects.filter(uploaded_at__lt=before).delete()[0]
