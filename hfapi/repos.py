"""Repositories as the Hub API sees them: catalog adapters (and reserved empty names).

Visibility and revisions are the catalog's own (hub.selectors): "main" is the current
version, then a commit id or a prefix of at least 7 hex digits, or "v<number>".
"""

from dataclasses import dataclass

from hub.models import Adapter, AdapterFile, AdapterVersion
from hub.selectors import adapters_visible, version_resolve
from hub.services.namespaces import adapter_id_refused

from .gitlfs import EMPTY_TREE_SHA
from .models import RepoReservation
from .responses import ApiError, repo_not_found, revision_not_found

HEAD_NAMES = {"main", "HEAD", "refs/heads/main"}


@dataclass
class Repo:
    owner_name: str
    name: str
    private: bool
    adapter: Adapter | None = None
    reservation: RepoReservation | None = None

    @property
    def repo_id(self) -> str:
        return f"{self.owner_name}/{self.name}"

    @property
    def owner(self):
        return self.adapter.owner if self.adapter else self.reservation.owner


def get_repo(auth, owner: str, name: str, *, for_write: bool = False) -> Repo:
    """The repository `owner/name` if `auth` may see it (and change it, with for_write).

    An id that could pass for a base model's is never a repository here: loaded by
    `transformers`, it would attach the adapter to the real base model unseen."""
    if adapter_id_refused(owner, name):
        raise repo_not_found()
    adapter = adapters_visible(auth.user).filter(owner__username=owner, name=name).first()
    if adapter is not None:
        repo = Repo(owner, name, adapter.private, adapter=adapter)
    else:
        reservation = (
            RepoReservation.objects.select_related("owner")
            .filter(owner__username=owner, name=name)
            .first()
        )
        if reservation is None or auth.user is None or reservation.owner_id != auth.user.pk:
            raise repo_not_found()
        repo = Repo(owner, name, reservation.private, reservation=reservation)
    if for_write and (auth.user is None or repo.owner.pk != auth.user.pk):
        raise ApiError(403, f"You don't have the rights to change {repo.repo_id}")
    return repo


def resolve_version(repo: Repo, revision: str) -> AdapterVersion | None:
    """The version `revision` names; None is the head of a repository with no version."""
    if repo.adapter is None:
        if revision in HEAD_NAMES or revision == EMPTY_TREE_SHA:
            return None
        raise revision_not_found(revision)
    version = version_resolve(repo.adapter, "main" if revision in HEAD_NAMES else revision)
    if version is None:
        raise revision_not_found(revision)
    return version


def head_commit(version: AdapterVersion | None) -> str:
    return version.commit if version is not None else EMPTY_TREE_SHA


def version_files(version: AdapterVersion | None) -> list[AdapterFile]:
    if version is None:
        return []
    return list(version.files.select_related("blob").order_by("filename"))
