"""qa.core.redact: keys, Authorization values and URL passwords never reach a message, a log row or a report."""

from __future__ import annotations

import pytest

from qa.core.redact import MASK, redact


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("model m: http://alice:s3cret-pw@10.0.0.2:8080/v1 rejected the API key",
         "model m: http://***@10.0.0.2:8080/v1 rejected the API key"),
        ("https://key-only@host/v1", "https://***@host/v1"),
        ("Authorization: Bearer sk-proj-AbCdEf123456 was sent", "Authorization: Bearer *** was sent"),
        ("headers {'authorization': 'Bearer abcdefgh12345', 'accept': 'json'}",
         "headers {'authorization': 'Bearer ***', 'accept': 'json'}"),
        ('{"message": "bad \\"Authorization: Basic dXNlcjpwYXNz\\" header"}',
         '{"message": "bad \\"Authorization: Basic ***\\" header"}'),
        ("https://api.example.com/v1?api_key=abc123def&model=m", "https://api.example.com/v1?api_key=***&model=m"),
        ("x-api-key: zz99zz99zz and then", "x-api-key: *** and then"),
        ('{"access_token": "eyJhbGciOi.x.y"}', '{"access_token": "***"}'),
        ("key sk-ant-api03-abcdefgh leaked", "key *** leaked"),
        ("hf_abcdefghijklmnopqrstu and ghp_abcdefghijklmnopqrstuvwxyz", "*** and ***"),
        # as an eval report's HTML writes them (Jinja escapes quotes and ampersands)
        ("{&#39;authorization&#39;: &#39;Basic YW5hbHlzdDpwYTU1=&#39;}", "{&#39;authorization&#39;: &#39;Basic ***&#39;}"),
        ("/v1?a=1&amp;api_key=abcdef12&amp;b=2", "/v1?a=1&amp;api_key=***&amp;b=2"),
    ],
)  # fmt: skip
def test_secrets_are_masked(text: str, shown: str) -> None:
    assert redact(text) == shown
    assert redact(shown) == shown  # idempotent: redacting twice (source and output) changes nothing


@pytest.mark.parametrize(
    "text",
    [
        "model qwen2.5-7b @ http://127.0.0.1:8000/v1 failed with 500 (request id req_1); try again later",
        "answer@1#ddfc62ea · 1000+100 tokens, $0.0012",
        "办理行政复议案件151件，审结67件，综合纠错率达29.8%。",
        "prompt_tokens: 12, completion_tokens: 3, task-list: a-b-c",
        "user@example.com wrote to /var/data/reports/a.txt",
        "",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert redact(text) == text


def test_known_secrets_are_masked_whatever_their_shape() -> None:
    assert (
        redact("server said: key localsecret9 is wrong", ["localsecret9"])
        == f"server said: key {MASK} is wrong"
    )
    # too short to be a secret worth masking: masking "x" would garble every message
    assert redact("x marks the spot", ["x", None, ""]) == "x marks the spot"
