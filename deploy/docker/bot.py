"""The handler the compose example mounts beside its configuration (handler = "bot:router")."""

from wxcallback.messages import Router

router = Router()


@router.text
def answer_text(message):
    return f"You said: {message.content}"
