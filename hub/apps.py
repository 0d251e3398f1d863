from django.apps import AppConfig


class HubConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "hub"
    verbose_name = "Catalog"

    def ready(self):
        from hub.models import Blob
        from hub.services.storage import BLOBS_DIR
        from hub.services.storage_ledger import track

        track(Blob, "storage_name", BLOBS_DIR)
