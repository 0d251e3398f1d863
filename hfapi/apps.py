from django.apps import AppConfig


class HfapiConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "hfapi"
    verbose_name = "Hugging Face Hub API"
