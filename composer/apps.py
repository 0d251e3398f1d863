from django.apps import AppConfig
from django.db.models.signals import pre_delete


class ComposerConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "composer"
    verbose_name = "Composition and merging"

    def ready(self):
        from composer.models import Job
        from composer.results import RESULTS_DIR, result_forget
        from hub.services.storage_ledger import track

        track(Job, "result_file", RESULTS_DIR)
        # However a job goes (its owner's account deleted, the admin), its result is marked.
        pre_delete.connect(result_forget, sender=Job, dispatch_uid="composer.result_forget")
