"""Chat apps. (Conversations, `Chat` and `ChatItem`, live here too.)"""

from django.db import models
from django.utils import timezone

from config.ids import new_object_id


class App(models.Model):
    """A chat app of a team: the model and prompt its conversations run with."""

    id = models.CharField(primary_key=True, max_length=24, default=new_object_id, editable=False)
    team = models.ForeignKey("keys.Team", on_delete=models.CASCADE, related_name="apps")
    name = models.CharField(max_length=100)
    intro = models.TextField(blank=True, default="")
    avatar = models.CharField(max_length=500, blank=True, default="")
    model = models.CharField(
        max_length=100, blank=True, default="",
        help_text="A configured chat model's name; empty uses the default model.",
    )
    system_prompt = models.TextField(
        blank=True, default="", help_text="May use {{variable}} placeholders."
    )
    temperature = models.FloatField(default=0.7)
    max_tokens = models.PositiveIntegerField(default=2000, help_text="Longest answer, in tokens.")
    history_turns = models.PositiveSmallIntegerField(
        default=6, help_text="How many earlier question/answer rounds are sent to the model."
    )
    welcome_text = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        indexes = [models.Index(fields=["team", "name"], name="app_team_name")]

    def __str__(self) -> str:
        return self.name
