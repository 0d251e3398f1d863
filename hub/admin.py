from django.contrib import admin, messages
from django.core.exceptions import ValidationError

from .forms import AdminLoginForm
from .models import Adapter, AdapterFile, AdapterVersion, BaseModel, Blob, Tag
from .services.adapters import adapter_delete
from .services.base_models import base_model_register

# The admin's log-in is throttled like the site's.
admin.site.login_form = AdminLoginForm


@admin.register(BaseModel)
class BaseModelAdmin(admin.ModelAdmin):
    list_display = ["identifier", "architecture", "local_path", "commit", "created"]
    search_fields = ["identifier"]
    readonly_fields = ["commit", "source"]
    actions = ["register_files"]

    @admin.action(description="Register the files of their local path (served by id)")
    def register_files(self, request, queryset):
        # From an upstream repository: manage.py base_model_register ID --from-hub REPO.
        for base in queryset:
            try:
                base_model_register(base.identifier, base.local_path or "-")
            except ValidationError as error:
                self.message_user(
                    request, f"Base model {base}: {' '.join(error.messages)}", level=messages.ERROR
                )
            else:
                self.message_user(request, f"Base model {base}: files registered.")


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    search_fields = ["name"]


class AdapterVersionInline(admin.TabularInline):
    model = AdapterVersion
    fields = ["number", "commit", "message", "r", "lora_alpha", "dtype", "param_count", "created"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True


@admin.register(Adapter)
class AdapterAdmin(admin.ModelAdmin):
    """Declared fields are editable; what the files say (versions) is read-only."""

    list_display = ["name", "owner", "base_model", "task", "private", "downloads", "updated"]
    list_filter = ["private", "task", "license"]
    search_fields = ["name", "owner__username"]
    raw_id_fields = ["owner", "base_model", "current_version"]
    readonly_fields = ["downloads", "created", "updated"]
    inlines = [AdapterVersionInline]

    def delete_model(self, request, obj):
        adapter_delete(adapter=obj)  # also frees the files nothing else uses

    def delete_queryset(self, request, queryset):
        for adapter in queryset:
            adapter_delete(adapter=adapter)


class AdapterFileInline(admin.TabularInline):
    model = AdapterFile
    fields = ["filename", "blob"]
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(AdapterVersion)
class AdapterVersionAdmin(admin.ModelAdmin):
    list_display = ["adapter", "number", "commit", "r", "created"]
    search_fields = ["adapter__name", "commit"]
    readonly_fields = [f.name for f in AdapterVersion._meta.fields]
    inlines = [AdapterFileInline]


@admin.register(Blob)
class BlobAdmin(admin.ModelAdmin):
    list_display = ["sha256", "size", "storage_name", "created"]
    search_fields = ["sha256"]
    readonly_fields = ["sha256", "size", "storage_name", "created"]
