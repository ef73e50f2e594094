"""Request and response bodies of the OpenAI-compatible API (the subset ayakit serves)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


def valid_text(value: str) -> str:
    """`value` when it is valid Unicode text; a lone surrogate (e.g. from JSON "\\ud800") is refused."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"holds a lone surrogate (U+{ord(value[exc.start]):04X} at character {exc.start}); "
                         "send valid UTF-8 text") from None
    return value


class ContentPart(BaseModel):
    """One part of a multi-part message; only text parts are accepted."""

    model_config = ConfigDict(extra="allow")
    type: Literal["text"]
    text: str

    @field_validator("text")
    @classmethod
    def _text(cls, value: str) -> str:
        return valid_text(value)


class Message(BaseModel):
    """One chat turn."""

    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[ContentPart] | None = None

    @field_validator("content")
    @classmethod
    def _content(cls, value: str | list[ContentPart] | None) -> str | list[ContentPart] | None:
        return valid_text(value) if isinstance(value, str) else value

    def text(self) -> str:
        """The message as plain text."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class StreamOptions(BaseModel):
    """OpenAI stream options: a final chunk with usage."""

    model_config = ConfigDict(extra="allow")
    include_usage: bool = False


class _Common(BaseModel):
    """Fields shared by both endpoints; unknown fields are ignored, unsupported values are rejected."""

    model_config = ConfigDict(extra="ignore")
    model: str | None = Field(None, max_length=512)
    temperature: float | None = Field(None, ge=0, le=2, description="0: greedy. Any value > 0 is honoured, "
                                      "however small (a tiny one samples among the tied best tokens).")
    top_p: float | None = Field(None, gt=0, le=1, description="Nucleus sampling; the most likely token is always "
                                "kept, however small top_p is.")
    n: int | None = Field(None, ge=1, le=1, description="Only n=1 is supported.")
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    stop: str | list[str] | None = None
    seed: int | None = Field(None, ge=-(2**63), le=2**63 - 1)
    presence_penalty: float | None = Field(None, ge=0, le=0, description="Not supported: only 0.")
    frequency_penalty: float | None = Field(None, ge=0, le=0, description="Not supported: only 0.")
    user: str | None = None

    @field_validator("model")
    @classmethod
    def _model(cls, value: str | None) -> str | None:
        return value if value is None else valid_text(value)

    @field_validator("stop")
    @classmethod
    def _stop(cls, value: str | list[str] | None) -> str | list[str] | None:
        items = [value] if isinstance(value, str) else (value or [])
        for item in items:
            valid_text(item)
        if len(items) > 4:
            raise ValueError("at most 4 stop sequences")
        if any(len(s) > 256 for s in items):
            raise ValueError("a stop sequence is at most 256 characters")
        return value

    def stop_list(self) -> list[str]:
        """Stop sequences as a list, empty ones dropped."""
        items = [self.stop] if isinstance(self.stop, str) else (self.stop or [])
        return [s for s in items if s]


class ChatRequest(_Common):
    """POST /v1/chat/completions."""

    messages: list[Message] = Field(..., min_length=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    logprobs: bool | None = False
    top_logprobs: int | None = Field(None, ge=0, le=20)


class CompletionRequest(_Common):
    """POST /v1/completions."""

    prompt: str | list[str] = Field(..., description="A string, or a list holding exactly one string.")
    max_tokens: int | None = Field(16, ge=0)
    logprobs: int | None = Field(None, ge=0, le=20)
    echo: bool | None = False

    @field_validator("prompt")
    @classmethod
    def _one_prompt(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, list) and len(value) != 1:
            raise ValueError("send one prompt per request (a string or a list of one string)")
        valid_text(value if isinstance(value, str) else value[0])
        return value

    def prompt_text(self) -> str:
        """The single prompt."""
        return self.prompt if isinstance(self.prompt, str) else self.prompt[0]


class ErrorBody(BaseModel):
    """OpenAI error detail."""

    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    """OpenAI error envelope."""

    error: ErrorBody


class Usage(BaseModel):
    """Token counts of a request."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ModelCard(BaseModel):
    """One entry of /v1/models."""

    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "ayakit"
    arch: str | None = None
    max_prompt_tokens: int | None = None
    trained_prompt_tokens: int | None = None
    max_tokens: int | None = None


class ModelList(BaseModel):
    """GET /v1/models."""

    object: Literal["list"] = "list"
    data: list[ModelCard]


class Health(BaseModel):
    """GET /health."""

    status: Literal["ok"]
    model: str
    queued: int
    requests: int
    batches: int
    max_batch_seen: int
    running: int = 0
    batching: str = "continuous"


class ChatChoice(BaseModel):
    """One chat choice."""

    index: int
    message: dict[str, Any]
    finish_reason: str | None
    logprobs: dict[str, Any] | None = None


class ChatResponse(BaseModel):
    """A non-streamed chat completion."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage


class CompletionChoice(BaseModel):
    """One text completion choice."""

    index: int
    text: str
    finish_reason: str | None
    logprobs: dict[str, Any] | None = None


class CompletionResponse(BaseModel):
    """A non-streamed text completion."""

    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage
