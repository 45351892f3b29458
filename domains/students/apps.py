from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class StudentsConfig(AppConfig):
    name = "domains.students"
    label = "students"
    verbose_name = _("Students")
    default_auto_field = "django.db.models.BigAutoField"
