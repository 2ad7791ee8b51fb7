"""The chat model seam: what the engines need of a chat model. The OpenAI-compatible client
(qa.models.llm.ChatLLM) and the tests' scripted fake (tests/fake_chat.py) implement it."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from qa.models.llm import Completion


class ChatModel(Protocol):
    model: str

    @property
    def label(self) -> str: ...  # how the interfaces name it: model @ endpoint

    def complete(self, messages: list[dict[str, str]], *, prompt_ref: str,
                 on_token: Callable[[str], None] | None = None,
                 json_schema: dict[str, Any] | None = None) -> Completion: ...  # fmt: skip

    def limited(self, calls: int) -> ChatModel: ...
