from django.conf import settings
from django.db import models


class Notification(models.Model):
    """A message for one user, kept so a page can show the history."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    text = models.CharField(max_length=500)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created", "id"]

    def as_dict(self) -> dict:
        return {"id": self.id, "text": self.text, "created": self.created.isoformat()}
