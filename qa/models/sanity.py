"""Is a model's reply a reply? Checks shared by answers and summaries (pure functions).

A weak or misconfigured model (a tiny model, a wrong chat template) does not fail loudly: it repeats the
instructions, copies the passages back, loops on one line, returns an empty JSON map, or never stops.
Each check here returns what is wrong in words a user can act on, or None; `qa.models.llm.ChatLLM` raises
`DegenerateReply` with it, so such a reply never reaches the screen as a normal-looking answer.
"""

from __future__ import annotations

import re
import zlib
from collections import Counter
from collections.abc import Sequence

from qa.core.text import normalize

WHAT_TO_TRY = "try a larger model, or check the server's chat template (llama-server: --jinja)"

_KEYS = re.compile(r'"[A-Za-z_]+"\s*:')


def _windows(text: str, size: int) -> set[str]:
    return {text[i : i + size] for i in range(len(text) - size + 1)}


def repeats_itself(text: str, min_chars: int = 300) -> bool:
    """A degenerate loop: one line said again and again, or text that compresses like a loop (ordinary
    Chinese prose compresses to about half its bytes; a loop to under a fifth)."""
    lines = [ln.strip() for ln in text.splitlines() if len(ln.strip()) >= 8]
    if len(lines) >= 6:
        line, count = Counter(lines).most_common(1)[0]
        if count >= 4 and count * len(line) >= 0.5 * sum(map(len, lines)):
            return True
    data = _KEYS.sub("", text).encode()
    return len(data) >= min_chars * 3 and len(zlib.compress(data)) / len(data) < 0.2


def echoes_instructions(reply: str, instructions: str, size: int = 24) -> bool:
    """The reply copies a run of `size` characters of the system prompt: a model does that when it does
    not take the prompt as instructions (a base model, a wrong chat template)."""
    said, rules = normalize(reply), normalize(instructions)
    if len(said) < size or len(rules) < size:
        return False
    return not _windows(said, size).isdisjoint(_windows(rules, size))


def echoes_passages(
    reply: str, prompt: str, size: int = 12, share: float = 0.7, min_chars: int = 400
) -> bool:
    """A free-text reply that is mostly the prompt's passages copied back, far longer than an answer that
    quotes a sentence or two."""
    said = normalize(reply)
    if len(said) < min_chars:
        return False
    shown = _windows(normalize(prompt), size)
    own = [said[i : i + size] for i in range(0, len(said) - size + 1, size // 2)]
    return bool(own) and sum(w in shown for w in own) / len(own) >= share


def implausible_prompt_tokens(prompt_tokens: int, prompt_chars: int) -> bool:
    """Every tokenizer spends at least a token per ~4 characters of Chinese/English text; a count far
    below that (3 tokens for 2,000 characters) means the server did not read the prompt as sent."""
    return prompt_tokens > 0 and prompt_chars >= 200 and prompt_tokens * 10 < prompt_chars


def problem(reply: str, messages: Sequence[dict[str, str]], *, free_text: bool) -> str | None:
    """What is wrong with a finished reply, or None. free_text: an answer (not JSON), which must not be the
    passages copied back (a JSON summary quotes passages by design)."""
    instructions = "\n".join(m["content"] for m in messages if m.get("role") == "system")
    shown = "\n".join(m["content"] for m in messages if m.get("role") != "system")
    if not reply.strip():
        return "the model returned an empty reply"
    if repeats_itself(reply):
        return "the model's reply repeats itself in a loop"
    if instructions and echoes_instructions(reply, instructions):
        return "the model's reply repeats the instructions instead of following them"
    if free_text and echoes_passages(reply, shown):
        return "the model's reply copies the passages back instead of answering"
    return None


_MARKER = re.compile(r"\[\d+\]")


def drop_echoed_markers(reply: str, instructions: str, context: int = 2) -> str:
    """Remove citation markers a reply copied from the instructions' own example ("（如 [1]、[2]）"): they
    cite nothing. A marker counts as copied when it and `context` characters either side are in the
    instructions verbatim."""
    if not instructions or "[" not in instructions:
        return reply
    out, last = [], 0
    for match in _MARKER.finditer(reply):
        around = reply[max(0, match.start() - context) : match.end() + context]
        if around in instructions:
            out.append(reply[last : match.start()])
            last = match.end()
    out.append(reply[last:])
    return "".join(out)
