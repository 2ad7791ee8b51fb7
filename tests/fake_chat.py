"""A chat model for tests of the answer chain's LLM path without HTTP: scripted replies (`enqueue`) and
the messages it was sent (`history`). The HTTP-level fake is tests/openai_server.py."""

from __future__ import annotations

from collections.abc import Callable

from qa.models.llm import Completion


class FakeChatModel:
    model = "fake-chat"
    label = "fake-chat"

    def __init__(self) -> None:
        self.replies: list[str | Callable[[list[dict]], str]] = []
        self.history: list[list[dict]] = []

    def limited(self, calls: int) -> FakeChatModel:
        return self  # one caller at a time in tests

    def enqueue(self, *replies: str | Callable[[list[dict]], str]) -> FakeChatModel:
        self.replies.extend(replies)
        return self

    def complete(self, messages: list[dict], *, prompt_ref: str | None = None,
                 on_token: Callable[[str], None] | None = None, **_: object) -> Completion:  # fmt: skip
        self.history.append(messages)
        reply = self.replies.pop(0)
        text = reply(messages) if callable(reply) else reply
        if on_token:
            on_token(text)
        return Completion(text=text, model=self.model, prompt_tokens=10, completion_tokens=5)
