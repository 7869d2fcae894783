"""A narrow stand-in for Dify's plugin daemon (langgenius/dify-plugin-daemon) and for the plugin marketplace.

Run in Dify's own Python environment (tests/harness/dify-python.ts) with Dify's api/ folder on PYTHONPATH:

    python plugin_daemon_stand_in.py --api-key KEY --work-dir DIR [--config JSON]

It listens on 127.0.0.1 only (two ports: the daemon, the marketplace), writes one JSON line to stdout when ready
({"daemon_port", "marketplace_port", "package_path", "unique_identifier"}), and exits when stdin closes or on
SIGTERM. Started from TS by plugin-daemon-stand-in.ts.

What it speaks is what Dify 1.14.1's daemon client sends (api/core/plugin/impl/*.py) and what the Go daemon
answers (internal/server/http_server.go, internal/service/*.go, internal/types/exception/*.go):

- every /plugin/<tenant>/... route needs `X-Api-Key` (the daemon's CheckingKey middleware): otherwise HTTP 401
  with {"code":-401,"message":"{\"message\":\"unauthorized\",\"error_type\":\"PluginDaemonUnauthorizedError\",...}"};
- management routes answer {code, message, data}; errors are code != 0 with a JSON `message`
  {"message", "error_type", "args"}, mostly with HTTP 200 like the daemon;
- dispatch routes (model runtime) need `X-Plugin-ID` and an installation for the tenant (404 PluginNotFoundError
  otherwise), then stream `data: {code, message, data}` lines; a plugin error is one line with code -500 and
  error_type PluginInvokeError whose message is the plugin's own {"args","error_type","message"}.

Every body it sends is first checked with Dify's own pydantic classes, the same way Dify's client parses it
(`PluginDaemonBasicResponse[T]`, `MarketplacePluginDeclaration`, ...). A body that does not validate is not sent:
the request gets HTTP 500, a line on stderr, and the recorded call carries `invalid`.

The tongyi package is built here as a real .difypkg (a zip: manifest.yaml, provider/tongyi.yaml, model YAMLs,
an icon); uploads are decoded from the zip like the daemon does, and the unique identifier uses the daemon's
checksum (pkg/plugin_packager/decoder/checksum.go).
"""

from __future__ import annotations

import argparse
import copy
import fnmatch
import hashlib
import io
import json
import math
import os
import re
import signal
import sys
import threading
import traceback
import uuid
import zipfile
from datetime import UTC, datetime
from typing import Any

import yaml
from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

# Dify's own entities (api/ on PYTHONPATH).
from core.plugin.entities.marketplace import MarketplacePluginDeclaration, MarketplacePluginSnapshot
from core.plugin.entities.plugin import MissingPluginDependency, PluginDeclaration, PluginInstallation
from core.plugin.entities.plugin_daemon import (
    PluginAgentProviderEntity,
    PluginBasicBooleanResponse,
    PluginDaemonBasicResponse,
    PluginDaemonError,
    PluginDatasourceProviderEntity,
    PluginDecodeResponse,
    PluginInstallTask,
    PluginInstallTaskStartResponse,
    PluginListResponse,
    PluginLLMNumTokensResponse,
    PluginModelProviderEntity,
    PluginModelSchemaEntity,
    PluginTextEmbeddingNumTokensResponse,
    PluginToolProviderEntity,
    PluginTriggerProviderEntity,
)
from graphon.model_runtime.entities.llm_entities import LLMResultChunk
from graphon.model_runtime.entities.text_embedding_entities import EmbeddingResult

LOG_PREFIX = "plugin-daemon-stand-in:"


def log(message: str) -> None:
    print(f"{LOG_PREFIX} {message}", file=sys.stderr, flush=True)


def dumps(value: Any, **kwargs: Any) -> str:
    """JSON like Go's encoding/json: compact, UTF-8 as is."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), **kwargs)


def now_iso() -> str:
    # Go's time.Time JSON form (RFC 3339 with fraction).
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


# ----- the tongyi package -------------------------------------------------------------------------------------

TONGYI_AUTHOR = "langgenius"
TONGYI_NAME = "tongyi"
TONGYI_PLUGIN_ID = f"{TONGYI_AUTHOR}/{TONGYI_NAME}"
TONGYI_VERSION = "0.1.1"
# 1x1 transparent PNG.
ICON_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)

TONGYI_MANIFEST = {
    "version": TONGYI_VERSION,
    "type": "plugin",
    "author": TONGYI_AUTHOR,
    "name": TONGYI_NAME,
    "label": {"en_US": "TONGYI", "zh_Hans": "通义千问"},
    "description": {"en_US": "Models provided by Alibaba Cloud (DashScope / Model Studio).", "zh_Hans": "通义千问"},
    "icon": "icon_s_en.png",
    "resource": {
        "memory": 268435456,
        "permission": {"model": {"enabled": True, "llm": True, "text_embedding": True}},
    },
    "plugins": {"models": ["provider/tongyi.yaml"]},
    "meta": {
        "version": "0.0.1",
        "arch": ["amd64", "arm64"],
        "runner": {"language": "python", "version": "3.12", "entrypoint": "main"},
        "minimum_dify_version": "1.0.0",
    },
    "created_at": "2025-01-01T00:00:00Z",
    "tags": ["search"],
}

# provider/tongyi.yaml of langgenius/dify-official-plugins (models/tongyi), trimmed to the two model types used.
TONGYI_PROVIDER_YAML = {
    "provider": "tongyi",
    "label": {"en_US": "TONGYI", "zh_Hans": "通义千问"},
    "description": {"en_US": "Models provided by Alibaba Cloud.", "zh_Hans": "阿里云百炼提供的模型。"},
    "icon_small": {"en_US": "icon_s_en.png"},
    "icon_large": {"en_US": "icon_s_en.png"},
    "background": "#EFF1FE",
    "help": {
        "title": {"en_US": "Get your API key from AliCloud", "zh_Hans": "从阿里云百炼获取 API Key"},
        "url": {"en_US": "https://bailian.console.aliyun.com/?apiKey=1#/api-key"},
    },
    "supported_model_types": ["llm", "text-embedding"],
    "configurate_methods": ["predefined-model", "customizable-model"],
    "models": {
        "llm": {"position": "models/llm/_position.yaml", "predefined": ["models/llm/*.yaml"]},
        "text_embedding": {"predefined": ["models/text_embedding/*.yaml"]},
    },
    "provider_credential_schema": {
        "credential_form_schemas": [
            {
                "variable": "dashscope_api_key",
                "label": {"en_US": "API Key"},
                "type": "secret-input",
                "required": True,
                "placeholder": {"en_US": "Enter your API Key", "zh_Hans": "在此输入您的 API Key"},
            },
            {
                "variable": "use_international_endpoint",
                "label": {"en_US": "Use International Endpoint", "zh_Hans": "使用国际端点"},
                "type": "radio",
                "required": True,
                "default": "false",
                "options": [
                    {"label": {"en_US": "True", "zh_Hans": "是"}, "value": "true"},
                    {"label": {"en_US": "False", "zh_Hans": "否"}, "value": "false"},
                ],
            },
        ]
    },
    "model_credential_schema": {
        "model": {
            "label": {"en_US": "Model Name", "zh_Hans": "模型名称"},
            "placeholder": {"en_US": "Enter your model name", "zh_Hans": "输入模型名称"},
        },
        "credential_form_schemas": [
            {
                "variable": "dashscope_api_key",
                "label": {"en_US": "API Key"},
                "type": "secret-input",
                "required": True,
                "placeholder": {"en_US": "Enter your API Key", "zh_Hans": "在此输入您的 API Key"},
            }
        ],
    },
    "extra": {"python": {"provider_source": "provider/tongyi.py", "model_sources": ["models/llm/llm.py"]}},
}

QWEN_PLUS_YAML = {
    "model": "qwen-plus",
    "label": {"en_US": "qwen-plus"},
    "model_type": "llm",
    "features": ["tool-call", "multi-tool-call", "agent-thought", "stream-tool-call"],
    "model_properties": {"mode": "chat", "context_size": 131072},
    "parameter_rules": [
        {"name": "temperature", "use_template": "temperature", "type": "float", "default": 0.3, "min": 0.0, "max": 2.0},
        {"name": "max_tokens", "use_template": "max_tokens", "type": "int", "default": 8192, "min": 1, "max": 16384},
        {"name": "top_p", "use_template": "top_p", "type": "float", "default": 0.8, "min": 0.1, "max": 0.9},
        {"name": "enable_search", "type": "boolean", "default": False, "label": {"en_US": "Web Search"}},
    ],
    "pricing": {"input": "0.0008", "output": "0.002", "unit": "0.001", "currency": "RMB"},
}

TEXT_EMBEDDING_V4_YAML = {
    "model": "text-embedding-v4",
    "label": {"en_US": "text-embedding-v4"},
    "model_type": "text-embedding",
    "model_properties": {"context_size": 8192, "max_chunks": 10},
    "pricing": {"input": "0.0005", "unit": "0.001", "currency": "RMB"},
}

# Labels and types the daemon fills in for `use_template` (pkg/entities/plugin_entities/model_declaration.go).
PARAMETER_TEMPLATES = {
    "temperature": ({"en_US": "Temperature", "zh_Hans": "温度"}, "float"),
    "top_p": ({"en_US": "Top P", "zh_Hans": "Top P"}, "float"),
    "top_k": ({"en_US": "Top K", "zh_Hans": "Top K"}, "int"),
    "presence_penalty": ({"en_US": "Presence Penalty", "zh_Hans": "存在惩罚"}, "float"),
    "frequency_penalty": ({"en_US": "Frequency Penalty", "zh_Hans": "频率惩罚"}, "float"),
    "max_tokens": ({"en_US": "Max Tokens", "zh_Hans": "最大标记"}, "int"),
    "response_format": ({"en_US": "Response Format", "zh_Hans": "回复格式"}, "string"),
    "json_schema": ({"en_US": "JSON Schema"}, "string"),
}


def build_tongyi_package() -> bytes:
    files = {
        "manifest.yaml": yaml.safe_dump(TONGYI_MANIFEST, allow_unicode=True, sort_keys=False),
        "provider/tongyi.yaml": yaml.safe_dump(TONGYI_PROVIDER_YAML, allow_unicode=True, sort_keys=False),
        "models/llm/_position.yaml": yaml.safe_dump(["qwen-plus"]),
        "models/llm/qwen-plus.yaml": yaml.safe_dump(QWEN_PLUS_YAML, allow_unicode=True, sort_keys=False),
        "models/text_embedding/text-embedding-v4.yaml": yaml.safe_dump(TEXT_EMBEDDING_V4_YAML, sort_keys=False),
        "main.py": "from dify_plugin import DifyPluginEnv, Plugin\n\nplugin = Plugin(DifyPluginEnv())\n",
        "requirements.txt": "dify_plugin>=0.4.0,<0.7.0\n",
        "_assets/icon_s_en.png": ICON_PNG,
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            info = zipfile.ZipInfo(name, date_time=(2025, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, content)
    return buffer.getvalue()


class PackageError(ValueError):
    pass


def daemon_checksum(files: dict[str, bytes]) -> str:
    """decoder.CalculateChecksum: sha256 over sorted (sha256(path) + sha256(content)) of every file."""
    data = b"".join(hashlib.sha256(name.encode()).digest() + hashlib.sha256(files[name]).digest() for name in sorted(files))
    return hashlib.sha256(data).hexdigest()


UNIQUE_IDENTIFIER_RE = re.compile(r"^(?:([a-z0-9_-]{1,64})\/)?([a-z0-9_-]{1,255}):([0-9]{1,4})(\.[0-9]{1,4}){1,3}(-\w{1,16})?@[a-f0-9]{32,64}$")


def plugin_id_of(unique_identifier: str) -> str:
    return unique_identifier.split(":")[0]


def normalize_model(model: dict[str, Any]) -> dict[str, Any]:
    model = copy.deepcopy(model)
    model.setdefault("fetch_from", "predefined-model")
    model.setdefault("features", [])
    model.setdefault("model_properties", {})
    model.setdefault("deprecated", False)
    rules = []
    for rule in model.get("parameter_rules") or []:
        rule = dict(rule)
        template = PARAMETER_TEMPLATES.get(rule.get("use_template") or "")
        if not rule.get("label"):
            rule["label"] = dict(template[0]) if template else {"en_US": rule["name"]}
        if template and not rule.get("type"):
            rule["type"] = template[1]
        rule.setdefault("required", False)
        rule.setdefault("options", [])
        rules.append(rule)
    model["parameter_rules"] = rules
    return model


def decode_package(package: bytes) -> tuple[str, dict[str, Any], dict[str, bytes]]:
    """What the daemon's zip decoder does with a .difypkg: unique identifier and declaration (JSON form)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(package))
        files = {name: archive.read(name) for name in archive.namelist() if not name.endswith("/")}
    except zipfile.BadZipFile as err:
        raise PackageError(f"zip: not a valid zip file ({err})") from err
    if "manifest.yaml" not in files:
        raise PackageError("failed to read manifest.yaml: file does not exist")
    try:
        manifest = yaml.safe_load(files["manifest.yaml"])
    except yaml.YAMLError as err:
        raise PackageError(f"failed to parse manifest.yaml: {err}") from err
    if not isinstance(manifest, dict) or not manifest.get("author") or not manifest.get("name") or not manifest.get("version"):
        raise PackageError("manifest.yaml: author, name and version are required")
    declaration = {k: v for k, v in manifest.items() if k != "type"}
    if isinstance(declaration.get("created_at"), datetime):
        declaration["created_at"] = declaration["created_at"].isoformat()
    model_files = (manifest.get("plugins") or {}).get("models") or []
    if model_files:
        provider_path = model_files[0]
        if provider_path not in files:
            raise PackageError(f"failed to read {provider_path}: file does not exist")
        provider = yaml.safe_load(files[provider_path])
        model_sets = provider.pop("models", {}) or {}
        provider.pop("extra", None)
        models: list[dict[str, Any]] = []
        position: dict[str, list[str]] = {}
        for model_type, spec in model_sets.items():
            for pattern in spec.get("predefined") or []:
                for name in sorted(files):
                    if fnmatch.fnmatch(name, pattern) and not os.path.basename(name).startswith("_"):
                        models.append(normalize_model(yaml.safe_load(files[name])))
            if spec.get("position") in files:
                position[model_type] = yaml.safe_load(files[spec["position"]]) or []
        provider["models"] = models
        provider["position"] = position
        declaration["model"] = provider
    declaration.setdefault("tags", [])
    declaration["verified"] = False
    identity = f"{manifest['author']}/{manifest['name']}:{manifest['version']}"
    unique_identifier = f"{identity}@{daemon_checksum(files)}"
    if not UNIQUE_IDENTIFIER_RE.match(unique_identifier):
        raise PackageError(f"plugin_unique_identifier is not valid: {unique_identifier}")
    try:
        PluginDeclaration.model_validate(copy.deepcopy(declaration))
    except Exception as err:  # pydantic's ValidationError
        raise PackageError(f"invalid manifest: {err}") from err
    assets = {name[len("_assets/") :]: content for name, content in files.items() if name.startswith("_assets/")}
    return unique_identifier, declaration, assets


# ----- responses ------------------------------------------------------------------------------------------------


def daemon_error(message: str, error_type: str, code: int, args: Any = None) -> dict[str, Any]:
    """exception.ErrorWithTypeAndCode(...).ToResponse(): the message is the JSON of {message, error_type, args}."""
    return {"code": code, "message": dumps({"message": message, "error_type": error_type, "args": args}), "data": None}


def bad_request(message: str) -> dict[str, Any]:
    return daemon_error(message, "PluginDaemonBadRequestError", -400)


def internal_error(message: str) -> dict[str, Any]:
    return daemon_error(message, "PluginDaemonInternalServerError", -500)


def invoke_error(error_type: str, message: str) -> dict[str, Any]:
    """What baseSSEService writes when the plugin raised: PluginInvokeError around the plugin's own error JSON
    (plugin_entities.ErrorResponse.Error(): Go map, so keys sorted)."""
    inner = dumps({"args": None, "error_type": error_type, "message": message}, sort_keys=True)
    return daemon_error(inner, "PluginInvokeError", -500)


def success(data: Any) -> dict[str, Any]:
    return {"code": 0, "message": "success", "data": data}


class InvalidBody(Exception):
    pass


def validate_envelope(envelope: dict[str, Any], type_: Any) -> None:
    """Parses the envelope as Dify's client does (base.py) and raises InvalidBody when that fails."""
    line = json.dumps(envelope, ensure_ascii=False)
    try:
        parsed = PluginDaemonBasicResponse[type_].model_validate_json(line)  # type: ignore[index]
        if parsed.code != 0:
            error = PluginDaemonError.model_validate_json(parsed.message)
            if error.error_type == "PluginInvokeError":
                PluginDaemonError.model_validate_json(error.message)
        elif parsed.data is None:
            raise ValueError("data is null in a success envelope (Dify: 'got empty data from plugin daemon')")
    except Exception as err:
        raise InvalidBody(f"not a valid PluginDaemonBasicResponse[{getattr(type_, '__name__', type_)}]: {err}") from err


# ----- state ----------------------------------------------------------------------------------------------------


class State:
    def __init__(self, api_key: str, config: dict[str, Any]):
        self.api_key = api_key
        self.lock = threading.RLock()
        self.calls: list[dict[str, Any]] = []
        self.config: dict[str, Any] = {
            "llm_script": {},
            "install_failure": None,
            "install_running_polls": 1,
            "marketplace_lists_tongyi": True,
        }
        self.config.update(config)
        # unique identifier -> {"declaration", "package", "assets", "verification"}
        self.packages: dict[str, dict[str, Any]] = {}
        # tenant -> plugin_id -> installation record
        self.installations: dict[str, dict[str, dict[str, Any]]] = {}
        # task id -> task record
        self.tasks: dict[str, dict[str, Any]] = {}
        self.tongyi_package = build_tongyi_package()
        uid, declaration, _ = decode_package(self.tongyi_package)
        self.tongyi_unique_identifier = uid
        # The marketplace's packages carry langgenius' signature; the stand-in trusts exactly its own bytes.
        self.signed_checksums = {uid.split("@")[1]}
        self.tongyi_declaration = declaration

    def store_package(self, package: bytes) -> dict[str, Any]:
        uid, declaration, assets = decode_package(package)
        signed = uid.split("@")[1] in self.signed_checksums
        declaration["verified"] = signed
        record = {
            "unique_identifier": uid,
            "declaration": declaration,
            "package": package,
            "assets": assets,
            "verification": {"authorized_category": "langgenius"} if signed else None,
        }
        with self.lock:
            self.packages[uid] = record
        return record

    def installation_view(self, tenant: str, record: dict[str, Any]) -> dict[str, Any]:
        package = self.packages[record["plugin_unique_identifier"]]
        declaration = package["declaration"]
        uid = record["plugin_unique_identifier"]
        return {
            "id": record["id"],
            "created_at": record["created_at"],
            "updated_at": record["updated_at"],
            "name": declaration["name"],
            "plugin_id": plugin_id_of(uid),
            "tenant_id": tenant,
            "plugin_unique_identifier": uid,
            "endpoints_active": 0,
            "endpoints_setups": 0,
            "installation_id": record["id"],
            "declaration": declaration,
            "runtime_type": "local",
            "version": declaration["version"],
            "source": record["source"],
            "checksum": uid.split("@")[1],
            "meta": record["meta"],
        }


# ----- the LLM ----------------------------------------------------------------------------------------------------

DEFAULT_TOOL_ARGUMENTS = {"RegionId": "cn-hangzhou"}
DEFAULT_ANSWER_PREFIX = "Here is what the tool returned: "
DEFAULT_TEXT = "Hello from the stand-in qwen-plus."


def text_of(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(part.get("data", "")) for part in content if isinstance(part, dict))
    return str(content)


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    def price(tokens: int, unit_price: str) -> str:
        return f"{tokens * float(unit_price) * 0.001:.7f}"

    return {
        "prompt_tokens": prompt_tokens,
        "prompt_unit_price": "0.0008",
        "prompt_price_unit": "0.001",
        "prompt_price": price(prompt_tokens, "0.0008"),
        "completion_tokens": completion_tokens,
        "completion_unit_price": "0.002",
        "completion_price_unit": "0.001",
        "completion_price": price(completion_tokens, "0.002"),
        "total_tokens": prompt_tokens + completion_tokens,
        "total_price": f"{float(price(prompt_tokens, '0.0008')) + float(price(completion_tokens, '0.002')):.7f}",
        "currency": "RMB",
        "latency": 0.05,
    }


def count_tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4))


def llm_answer(data: dict[str, Any], script: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The chunks (LLMResultChunk JSON) for one invoke, and what was answered (for the call record)."""
    model = data.get("model", "")
    messages = data.get("prompt_messages") or []
    tools = data.get("tools") or []
    tool_names = [tool.get("name", "") for tool in tools]
    last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=-1)
    tool_results = [m for m in messages[last_user + 1 :] if m.get("role") == "tool"]
    prompt_text = "".join(text_of(m.get("content")) for m in messages)
    prompt_tokens = count_tokens(prompt_text)
    mode = script.get("mode") or "tool-then-text"
    record: dict[str, Any] = {"model": model, "tools": tool_names, "stream": data.get("stream", True)}

    def chunk(index: int, content: str, tool_calls: list[dict[str, Any]] | None = None, final: dict[str, Any] | None = None):
        delta: dict[str, Any] = {
            "index": index,
            "message": {"role": "assistant", "content": content, "name": None, "tool_calls": tool_calls or []},
            "usage": None,
            "finish_reason": None,
        }
        if final:
            delta.update(final)
        return {"model": model, "prompt_messages": [], "system_fingerprint": None, "delta": delta}

    if tool_results:
        result = text_of(tool_results[-1].get("content"))
        text = f"{script.get('answer_prefix', DEFAULT_ANSWER_PREFIX)}{result}"
        record.update(answered="text", text=text, tool_result=result)
    elif mode == "tool-then-text" and tool_names:
        wanted = script.get("tool_name")
        name = wanted if wanted in tool_names else tool_names[0]
        arguments = script.get("tool_arguments") or DEFAULT_TOOL_ARGUMENTS
        call = {
            "id": f"call_{uuid.uuid4().hex[:24]}",
            "type": "function",
            "function": {"name": name, "arguments": json.dumps(arguments, ensure_ascii=False)},
        }
        record.update(answered="tool_call", tool_name=name, tool_arguments=arguments)
        chunks = [
            chunk(0, "", [call]),
            chunk(1, "", None, {"usage": usage(prompt_tokens, 12), "finish_reason": "tool_calls"}),
        ]
        return chunks, record
    elif "Your Output" in prompt_text and not tool_names:
        # Dify's conversation-title prompt (core/llm_generator/prompts.py CONVERSATION_TITLE_PROMPT).
        text = json.dumps({"Language Type": "English", "Your Reasoning": "stand-in", "Your Output": "Stand-in conversation"})
        record.update(answered="title", text=text)
    else:
        text = script.get("text") or DEFAULT_TEXT
        record.update(answered="text", text=text)

    pieces = re.findall(r"\S+\s*|\s+", text) or [text]
    size = max(1, math.ceil(len(pieces) / 3))
    parts = ["".join(pieces[i : i + size]) for i in range(0, len(pieces), size)]
    chunks = [chunk(i, part) for i, part in enumerate(parts)]
    chunks.append(chunk(len(parts), "", None, {"usage": usage(prompt_tokens, count_tokens(text)), "finish_reason": "stop"}))
    return chunks, record


def key_problem(credentials: dict[str, Any]) -> str | None:
    """A DashScope key looks like `sk-...`; the stand-in refuses any other and any containing "invalid"."""
    key = str((credentials or {}).get("dashscope_api_key") or "")
    if not key.startswith("sk-") or "invalid" in key.lower():
        return "Invalid API-key provided."
    return None


def fake_embedding(text: str, dimensions: int = 1024) -> list[float]:
    seed = hashlib.sha256(text.encode()).digest()
    values = [((seed[i % 32] + i * 31) % 255) / 255.0 - 0.5 for i in range(dimensions)]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [v / norm for v in values]


# ----- the daemon app ---------------------------------------------------------------------------------------------


class Reply:
    """A daemon answer: JSON envelope (validated as `type_`), SSE lines (each validated as `type_`), or bytes."""

    def __init__(self, status: int = 200, envelope: dict | None = None, type_: Any = None, lines: list[dict] | None = None,
                 raw: bytes | None = None, content_type: str = "application/json", unchecked: bool = False):
        self.status = status
        self.envelope = envelope
        self.type_ = type_
        self.lines = lines
        self.raw = raw
        self.content_type = content_type
        self.unchecked = unchecked


def json_body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(request.get_data(as_text=True) or "{}")
    except json.JSONDecodeError:
        return {}
    return body if isinstance(body, dict) else {}


class DaemonApp:
    def __init__(self, state: State):
        self.state = state
        p = "/plugin/<tenant_id>"
        self.url_map = Map(
            [
                Rule("/health/check", endpoint="health", methods=["GET"]),
                Rule("/__stand_in/calls", endpoint="control_calls", methods=["GET"]),
                Rule("/__stand_in/configure", endpoint="control_configure", methods=["POST"]),
                Rule(f"{p}/management/list", endpoint="list_plugins", methods=["GET"]),
                Rule(f"{p}/management/install/upload/package", endpoint="upload_package", methods=["POST"]),
                Rule(f"{p}/management/install/identifiers", endpoint="install_identifiers", methods=["POST"]),
                Rule(f"{p}/management/install/tasks", endpoint="list_tasks", methods=["GET"]),
                Rule(f"{p}/management/install/tasks/delete_all", endpoint="delete_all_tasks", methods=["POST"]),
                Rule(f"{p}/management/install/tasks/<task_id>", endpoint="fetch_task", methods=["GET"]),
                Rule(f"{p}/management/install/tasks/<task_id>/delete", endpoint="delete_task", methods=["POST"]),
                Rule(f"{p}/management/install/tasks/<task_id>/delete/<path:identifier>", endpoint="delete_task_item", methods=["POST"]),
                Rule(f"{p}/management/decode/from_identifier", endpoint="decode_identifier", methods=["GET"]),
                Rule(f"{p}/management/fetch/manifest", endpoint="fetch_manifest", methods=["GET"]),
                Rule(f"{p}/management/fetch/identifier", endpoint="fetch_identifier", methods=["GET"]),
                Rule(f"{p}/management/uninstall", endpoint="uninstall", methods=["POST"]),
                Rule(f"{p}/management/installation/fetch/batch", endpoint="installations_batch", methods=["POST"]),
                Rule(f"{p}/management/installation/missing", endpoint="installations_missing", methods=["POST"]),
                Rule(f"{p}/management/models", endpoint="list_models", methods=["GET"]),
                Rule(f"{p}/management/tools", endpoint="empty_tools", methods=["GET"]),
                Rule(f"{p}/management/agent_strategies", endpoint="empty_agent_strategies", methods=["GET"]),
                Rule(f"{p}/management/datasources", endpoint="empty_datasources", methods=["GET"]),
                Rule(f"{p}/management/triggers", endpoint="empty_triggers", methods=["GET"]),
                Rule(f"{p}/asset/<asset_id>", endpoint="asset", methods=["GET"]),
                Rule(f"{p}/dispatch/model/schema", endpoint="model_schema", methods=["POST"]),
                Rule(f"{p}/dispatch/model/validate_provider_credentials", endpoint="validate_provider", methods=["POST"]),
                Rule(f"{p}/dispatch/model/validate_model_credentials", endpoint="validate_model", methods=["POST"]),
                Rule(f"{p}/dispatch/llm/invoke", endpoint="llm_invoke", methods=["POST"]),
                Rule(f"{p}/dispatch/llm/num_tokens", endpoint="llm_num_tokens", methods=["POST"]),
                Rule(f"{p}/dispatch/text_embedding/invoke", endpoint="embedding_invoke", methods=["POST"]),
                Rule(f"{p}/dispatch/text_embedding/num_tokens", endpoint="embedding_num_tokens", methods=["POST"]),
            ],
            strict_slashes=False,
        )

    # --- WSGI plumbing -----------------------------------------------------------------------------------------

    def __call__(self, environ, start_response):
        request = Request(environ)
        call: dict[str, Any] = {
            "method": request.method,
            "path": request.path,
            "query": {k: v for k, v in request.args.items()},
            "at": now_iso(),
        }
        adapter = self.url_map.bind_to_environ(environ)
        try:
            rule, values = adapter.match(return_rule=True)
        except NotFound:
            call.update(route=None, status=404, unhandled=True)
            self.record(call, request)
            log(f"no route for {request.method} {request.path} (answered like gin's NoRoute)")
            return Response(json.dumps({"code": "not_found", "message": "route not found"}), 404, content_type="application/json")(environ, start_response)
        except HTTPException as err:
            call.update(route=None, status=err.code or 405, unhandled=True)
            self.record(call, request)
            return Response(json.dumps({"code": "not_found", "message": "route not found"}), 404, content_type="application/json")(environ, start_response)

        endpoint = str(rule.endpoint)
        call["route"] = rule.rule
        if "tenant_id" in values:
            call["tenant_id"] = values["tenant_id"]
        if request.headers.get("X-Plugin-ID"):
            call["plugin_id"] = request.headers["X-Plugin-ID"]
        control = endpoint.startswith("control_") or endpoint == "health"
        if endpoint != "health" and request.headers.get("X-Api-Key") != self.state.api_key:
            reply = Reply(401, daemon_error("unauthorized", "PluginDaemonUnauthorizedError", -401), dict)
        else:
            try:
                reply = getattr(self, endpoint)(request, call, **values)
            except Exception as err:  # a bug in the stand-in: say so loudly
                log(f"error in {endpoint}: {err}\n{traceback.format_exc()}")
                reply = Reply(500, internal_error(f"stand-in failure: {err}"), dict)
        response = self.render(reply, call)
        call["status"] = response.status_code
        if not control:
            self.record(call, request)
        return response(environ, start_response)

    def record(self, call: dict[str, Any], request: Request) -> None:
        if "body" not in call:
            content_type = request.headers.get("Content-Type", "")
            if content_type.startswith("multipart/form-data"):
                call["body"] = {
                    **{k: v for k, v in request.form.items()},
                    **{k: {"filename": f.filename, "size": len(f.read())} for k, f in request.files.items()},
                }
            elif request.method == "POST":
                call["body"] = json_body(request)
        with self.state.lock:
            self.state.calls.append(call)

    def render(self, reply: Reply, call: dict[str, Any]) -> Response:
        if reply.raw is not None:
            return Response(reply.raw, reply.status, content_type=reply.content_type)
        try:
            if reply.lines is not None:
                for line in reply.lines:
                    validate_envelope(line, reply.type_)
                body = "".join(f"data: {dumps(line)}\n\n" for line in reply.lines)
                return Response(body, reply.status, content_type="text/event-stream")
            assert reply.envelope is not None
            if not reply.unchecked:
                validate_envelope(reply.envelope, reply.type_)
            return Response(dumps(reply.envelope), reply.status, content_type="application/json")
        except InvalidBody as err:
            call["invalid"] = str(err)
            log(f"INVALID response body for {call['method']} {call['path']}: {err}")
            return Response(json.dumps(internal_error(f"stand-in built an invalid body: {err}")), 500, content_type="application/json")

    # --- control (the stand-in's own, not the daemon's) --------------------------------------------------------

    def health(self, request, call):
        return Reply(200, {"status": "ok", "pool_status": {}}, unchecked=True)

    def control_calls(self, request, call):
        with self.state.lock:
            return Reply(200, {"calls": list(self.state.calls)}, unchecked=True)

    def control_configure(self, request, call):
        body = json_body(request)
        with self.state.lock:
            for key in ("llm_script", "install_failure", "install_running_polls", "marketplace_lists_tongyi"):
                if key in body:
                    self.state.config[key] = body[key]
            if body.get("clear_calls"):
                self.state.calls.clear()
            return Reply(200, {"config": self.state.config}, unchecked=True)

    # --- management ----------------------------------------------------------------------------------------------

    @staticmethod
    def page_args(request: Request) -> tuple[int, int] | None:
        try:
            page, size = int(request.args.get("page", "")), int(request.args.get("page_size", ""))
        except ValueError:
            return None
        return (page, size) if page >= 1 and 1 <= size <= 256 else None

    def list_plugins(self, request, call, tenant_id):
        paging = self.page_args(request)
        if paging is None:
            return Reply(400, bad_request("page and page_size are required (page >= 1, 1 <= page_size <= 256)"), dict)
        page, size = paging
        with self.state.lock:
            records = sorted(self.state.installations.get(tenant_id, {}).values(), key=lambda r: r["created_at"])
            views = [self.state.installation_view(tenant_id, r) for r in records]
        return Reply(200, success({"list": views[(page - 1) * size : page * size], "total": len(views)}), PluginListResponse)

    def upload_package(self, request, call, tenant_id):
        upload = request.files.get("dify_pkg")
        if upload is None:
            return Reply(200, bad_request("http: no such file"), dict)
        content = upload.read()
        call["body"] = {"verify_signature": request.form.get("verify_signature"), "dify_pkg": {"filename": upload.filename, "size": len(content)}}
        try:
            record = self.state.store_package(content)
        except PackageError as err:
            return Reply(200, bad_request(f"{err}\nfailed to decode package"), dict)
        if request.form.get("verify_signature") == "true" and not record["declaration"]["verified"]:
            return Reply(200, bad_request("plugin verification has been enabled, and the plugin you want to install has a bad signature"), dict)
        call["unique_identifier"] = record["unique_identifier"]
        data = {"unique_identifier": record["unique_identifier"], "manifest": record["declaration"], "verification": record["verification"]}
        return Reply(200, success(data), PluginDecodeResponse)

    def install_identifiers(self, request, call, tenant_id):
        body = json_body(request)
        identifiers = body.get("plugin_unique_identifiers")
        source = body.get("source")
        metas = body.get("metas") or []
        if not isinstance(identifiers, list) or not identifiers or not all(isinstance(i, str) and UNIQUE_IDENTIFIER_RE.match(i) for i in identifiers):
            return Reply(400, bad_request("plugin_unique_identifiers must be valid plugin unique identifiers"), dict)
        if not source:
            return Reply(400, bad_request("source is required"), dict)
        if len(metas) != len(identifiers):
            return Reply(200, bad_request("the number of metas must be equal to the number of plugin unique identifiers"), dict)
        with self.state.lock:
            installed = self.state.installations.get(tenant_id, {})
            pending = [(uid, meta) for uid, meta in zip(identifiers, metas) if plugin_id_of(uid) not in installed]
            if not pending:
                return Reply(200, success({"all_installed": True, "task_id": ""}), PluginInstallTaskStartResponse)
            for uid, _ in pending:
                if uid not in self.state.packages:
                    return Reply(200, internal_error("plugin not found\nfailed to get plugin declaration"), dict)
            task_id = str(uuid.uuid4())
            stamp = now_iso()
            self.state.tasks[task_id] = {
                "id": task_id,
                "created_at": stamp,
                "updated_at": stamp,
                "status": "running",
                "tenant_id": tenant_id,
                "total_plugins": len(identifiers),
                "completed_plugins": len(identifiers) - len(pending),
                "plugins": [
                    {
                        "plugin_unique_identifier": uid,
                        "labels": self.state.packages[uid]["declaration"]["label"],
                        "icon": self.state.packages[uid]["declaration"]["icon"],
                        "icon_dark": self.state.packages[uid]["declaration"].get("icon_dark") or "",
                        "plugin_id": plugin_id_of(uid),
                        "status": "pending",
                        "message": "",
                        "source": source,
                    }
                    for uid, _ in pending
                ],
                "_metas": {uid: meta or {} for uid, meta in pending},
                "_polls": 0,
                "_failure": self.state.config.get("install_failure"),
            }
        call["task_id"] = task_id
        return Reply(200, success({"all_installed": False, "task_id": task_id}), PluginInstallTaskStartResponse)

    def advance_task(self, task: dict[str, Any]) -> None:
        """Running for `install_running_polls` fetches, then success (the plugins get installed) or failed."""
        if task["status"] not in ("running", "pending"):
            return
        task["_polls"] += 1
        if task["_polls"] <= int(self.state.config.get("install_running_polls", 1)):
            for plugin in task["plugins"]:
                plugin.update(status="running", message="starting")
            return
        failure = task["_failure"]
        stamp = now_iso()
        for plugin in task["plugins"]:
            if failure:
                plugin.update(status="failed", message=str(failure))
                continue
            uid = plugin["plugin_unique_identifier"]
            tenant = self.state.installations.setdefault(task["tenant_id"], {})
            tenant[plugin_id_of(uid)] = {
                "id": str(uuid.uuid4()),
                "created_at": stamp,
                "updated_at": stamp,
                "plugin_unique_identifier": uid,
                "source": plugin["source"],
                "meta": task["_metas"].get(uid, {}),
            }
            plugin.update(status="success", message="installed")
        task["completed_plugins"] = task["total_plugins"]
        task["status"] = "failed" if failure else "success"
        task["updated_at"] = stamp

    @staticmethod
    def task_view(task: dict[str, Any]) -> dict[str, Any]:
        return {k: copy.deepcopy(v) for k, v in task.items() if not k.startswith("_")}

    def fetch_task(self, request, call, tenant_id, task_id):
        with self.state.lock:
            task = self.state.tasks.get(task_id)
            if task is None or task["tenant_id"] != tenant_id:
                return Reply(200, internal_error("record not found"), dict)
            self.advance_task(task)
            return Reply(200, success(self.task_view(task)), PluginInstallTask)

    def list_tasks(self, request, call, tenant_id):
        paging = self.page_args(request)
        if paging is None:
            return Reply(400, bad_request("page and page_size are required (page >= 1, 1 <= page_size <= 256)"), dict)
        page, size = paging
        with self.state.lock:
            tasks = sorted((t for t in self.state.tasks.values() if t["tenant_id"] == tenant_id), key=lambda t: t["created_at"])
            views = [self.task_view(t) for t in tasks][(page - 1) * size : page * size]
        return Reply(200, success(views), list[PluginInstallTask])

    def delete_task(self, request, call, tenant_id, task_id):
        with self.state.lock:
            task = self.state.tasks.get(task_id)
            if task and task["tenant_id"] == tenant_id:
                del self.state.tasks[task_id]
        return Reply(200, success(True), bool)

    def delete_all_tasks(self, request, call, tenant_id):
        with self.state.lock:
            for task_id in [i for i, t in self.state.tasks.items() if t["tenant_id"] == tenant_id]:
                del self.state.tasks[task_id]
        return Reply(200, success(True), bool)

    def delete_task_item(self, request, call, tenant_id, task_id, identifier):
        with self.state.lock:
            task = self.state.tasks.get(task_id)
            if task and task["tenant_id"] == tenant_id:
                task["plugins"] = [p for p in task["plugins"] if p["plugin_unique_identifier"] != identifier.lstrip("/")]
        return Reply(200, success(True), bool)

    def identifier_arg(self, request: Request) -> str | None:
        uid = request.args.get("plugin_unique_identifier") or request.args.get("PluginUniqueIdentifier") or ""
        return uid if UNIQUE_IDENTIFIER_RE.match(uid) else None

    def package_of(self, request: Request, missing: str):
        """(uid, uploaded package) for the request's identifier, or (None, the daemon's error Reply)."""
        uid = self.identifier_arg(request)
        if uid is None:
            return None, Reply(400, bad_request("plugin_unique_identifier is not valid"), dict)
        with self.state.lock:
            record = self.state.packages.get(uid)
        if record is None:
            return None, Reply(200, bad_request(missing), dict)
        return uid, record

    def decode_identifier(self, request, call, tenant_id):
        uid, record = self.package_of(request, "plugin package not found")
        if uid is None:
            return record
        data = {"unique_identifier": uid, "manifest": record["declaration"], "verification": record["verification"]}
        return Reply(200, success(data), PluginDecodeResponse)

    def fetch_manifest(self, request, call, tenant_id):
        uid, record = self.package_of(request, "plugin not found")
        if uid is None:
            return record
        return Reply(200, success(record["declaration"]), PluginDeclaration)

    def fetch_identifier(self, request, call, tenant_id):
        uid = self.identifier_arg(request)
        if uid is None:
            return Reply(400, bad_request("plugin_unique_identifier is not valid"), dict)
        with self.state.lock:
            known = any(r["plugin_unique_identifier"] == uid for t in self.state.installations.values() for r in t.values())
        return Reply(200, success(known), bool)

    def uninstall(self, request, call, tenant_id):
        installation_id = json_body(request).get("plugin_installation_id")
        if not installation_id:
            return Reply(400, bad_request("plugin_installation_id is required"), dict)
        with self.state.lock:
            tenant = self.state.installations.get(tenant_id, {})
            for plugin_id, record in list(tenant.items()):
                if record["id"] == installation_id:
                    del tenant[plugin_id]
                    call["uninstalled"] = plugin_id
        # The daemon answers true for an unknown installation too.
        return Reply(200, success(True), bool)

    def installations_batch(self, request, call, tenant_id):
        wanted = json_body(request).get("plugin_ids") or []
        with self.state.lock:
            tenant = self.state.installations.get(tenant_id, {})
            views = [self.state.installation_view(tenant_id, tenant[p]) for p in wanted if p in tenant]
        for view in views:  # PluginInstallation has no name/installation_id
            view.pop("name"), view.pop("installation_id")
        return Reply(200, success(views), list[PluginInstallation])

    def installations_missing(self, request, call, tenant_id):
        identifiers = json_body(request).get("plugin_unique_identifiers") or []
        with self.state.lock:
            tenant = self.state.installations.get(tenant_id, {})
            missing = []
            for uid in identifiers:
                current = tenant.get(plugin_id_of(uid))
                if current is None or current["plugin_unique_identifier"] != uid:
                    missing.append({"plugin_unique_identifier": uid, "current_identifier": current["plugin_unique_identifier"] if current else None})
        return Reply(200, success(missing), list[MissingPluginDependency])

    def list_models(self, request, call, tenant_id):
        paging = self.page_args(request)
        if paging is None:
            return Reply(400, bad_request("page and page_size are required (page >= 1, 1 <= page_size <= 256)"), dict)
        page, size = paging
        with self.state.lock:
            records = sorted(self.state.installations.get(tenant_id, {}).values(), key=lambda r: r["created_at"])
            providers = []
            for record in records:
                declaration = self.state.packages[record["plugin_unique_identifier"]]["declaration"]
                if not declaration.get("model"):
                    continue
                providers.append(
                    {
                        "id": record["id"],
                        "created_at": record["created_at"],
                        "updated_at": record["updated_at"],
                        "provider": declaration["model"]["provider"],
                        "tenant_id": tenant_id,
                        "plugin_unique_identifier": record["plugin_unique_identifier"],
                        "plugin_id": plugin_id_of(record["plugin_unique_identifier"]),
                        "declaration": declaration["model"],
                    }
                )
        return Reply(200, success(providers[(page - 1) * size : page * size]), list[PluginModelProviderEntity])

    # Listings of plugin kinds the stand-in never installs: always empty.
    def empty_tools(self, request, call, tenant_id):
        return Reply(200, success([]), list[PluginToolProviderEntity])

    def empty_agent_strategies(self, request, call, tenant_id):
        return Reply(200, success([]), list[PluginAgentProviderEntity])

    def empty_datasources(self, request, call, tenant_id):
        return Reply(200, success([]), list[PluginDatasourceProviderEntity])

    def empty_triggers(self, request, call, tenant_id):
        return Reply(200, success([]), list[PluginTriggerProviderEntity])

    def asset(self, request, call, tenant_id, asset_id):
        with self.state.lock:
            for record in self.state.packages.values():
                if asset_id in record["assets"]:
                    return Reply(200, raw=record["assets"][asset_id], content_type="application/octet-stream")
        # The daemon answers an empty 200 for a missing file (controllers.GetAsset); Dify treats non-200 as missing.
        return Reply(404, raw=b"", content_type="application/octet-stream")

    # --- dispatch (model runtime) --------------------------------------------------------------------------------

    def dispatch(self, request: Request, call: dict[str, Any], tenant_id: str, required: tuple[str, ...]):
        """The daemon's dispatch middlewares and request binding; returns (data, declaration) or a Reply."""
        plugin_id = request.headers.get("X-Plugin-ID", "")
        if not plugin_id:
            return Reply(400, bad_request("plugin_id is required"), dict)
        with self.state.lock:
            record = self.state.installations.get(tenant_id, {}).get(plugin_id)
            declaration = self.state.packages[record["plugin_unique_identifier"]]["declaration"] if record else None
        if record is None:
            return Reply(404, daemon_error("plugin not found", "PluginNotFoundError", -404), dict)
        body = json_body(request)
        call["body"] = body
        data = body.get("data")
        if not isinstance(data, dict):
            return Reply(400, bad_request("Key: 'data' Error:Field validation for 'data' failed on the 'required' tag"), dict)
        missing = [field for field in required if data.get(field) in (None, "")]
        if missing:
            return Reply(400, bad_request(f"Key: '{missing[0]}' Error:Field validation for '{missing[0]}' failed on the 'required' tag"), dict)
        return data, declaration

    @staticmethod
    def find_model(declaration: dict[str, Any], model_type: str, model: str) -> dict[str, Any] | None:
        for entry in (declaration.get("model") or {}).get("models") or []:
            if entry["model"] == model and entry["model_type"] == model_type:
                return entry
        return None

    @staticmethod
    def provider_error(declaration: dict[str, Any], data: dict[str, Any]) -> dict[str, Any] | None:
        provider = (declaration.get("model") or {}).get("provider")
        if data.get("provider") != provider:
            # The SDK's PluginExecutor: ValueError(f"Provider `{provider}` not found").
            return invoke_error("ValueError", f"Provider `{data.get('provider')}` not found")
        return None

    def model_schema(self, request, call, tenant_id):
        bound = self.dispatch(request, call, tenant_id, ("provider", "model", "model_type"))
        if isinstance(bound, Reply):
            return bound
        data, declaration = bound
        error = self.provider_error(declaration, data)
        if error is None:
            model = self.find_model(declaration, data["model_type"], data["model"])
            if model is None:
                # The SDK would send {"model_schema": null}, which Dify cannot parse; an explicit error instead.
                error = invoke_error("ValueError", f"Model `{data['model']}` ({data['model_type']}) not found")
            else:
                return Reply(200, lines=[success({"model_schema": model})], type_=PluginModelSchemaEntity)
        return Reply(200, lines=[error], type_=PluginModelSchemaEntity)

    def validate_credentials(self, request, call, tenant_id, required):
        bound = self.dispatch(request, call, tenant_id, required)
        if isinstance(bound, Reply):
            return bound
        data, declaration = bound
        error = self.provider_error(declaration, data)
        credentials = data.get("credentials") or {}
        if error is None and "model" in data and self.find_model(declaration, data.get("model_type", ""), data["model"]) is None:
            error = invoke_error("CredentialsValidateFailedError", f"Model `{data['model']}` not found")
        if error is None:
            problem = key_problem(credentials)
            if problem:
                # TongyiProvider.validate_provider_credentials raises CredentialsValidateFailedError.
                error = invoke_error("CredentialsValidateFailedError", problem)
        call["credentials_valid"] = error is None
        if error is not None:
            return Reply(200, lines=[error], type_=PluginBasicBooleanResponse)
        return Reply(200, lines=[success({"result": True, "credentials": credentials})], type_=PluginBasicBooleanResponse)

    def validate_provider(self, request, call, tenant_id):
        return self.validate_credentials(request, call, tenant_id, ("provider", "credentials"))

    def validate_model(self, request, call, tenant_id):
        return self.validate_credentials(request, call, tenant_id, ("provider", "model", "model_type", "credentials"))

    def llm_invoke(self, request, call, tenant_id):
        bound = self.dispatch(request, call, tenant_id, ("provider", "model", "model_type"))
        if isinstance(bound, Reply):
            return bound
        data, declaration = bound
        if data.get("model_type") != "llm":
            return Reply(400, bad_request("Key: 'model_type' Error:Field validation for 'model_type' failed on the 'eq' tag"), dict)
        error = self.provider_error(declaration, data)
        if error is None and self.find_model(declaration, "llm", data["model"]) is None:
            error = invoke_error("InvokeBadRequestError", f"Model `{data['model']}` does not exist or you do not have access to it.")
        if error is None and key_problem(data.get("credentials") or {}):
            error = invoke_error("InvokeAuthorizationError", "Invalid API-key provided.")
        if error is not None:
            call["llm"] = {"model": data.get("model"), "answered": "error", "error": json.loads(error["message"])["message"]}
            return Reply(200, lines=[error], type_=LLMResultChunk)
        with self.state.lock:
            script = dict(self.state.config.get("llm_script") or {})
        chunks, record = llm_answer(data, script)
        call["llm"] = record
        return Reply(200, lines=[success(c) for c in chunks], type_=LLMResultChunk)

    def llm_num_tokens(self, request, call, tenant_id):
        bound = self.dispatch(request, call, tenant_id, ("provider", "model", "model_type"))
        if isinstance(bound, Reply):
            return bound
        data, _ = bound
        text = "".join(text_of(m.get("content")) for m in data.get("prompt_messages") or [])
        return Reply(200, lines=[success({"num_tokens": count_tokens(text)})], type_=PluginLLMNumTokensResponse)

    def embedding_invoke(self, request, call, tenant_id):
        bound = self.dispatch(request, call, tenant_id, ("provider", "model", "model_type"))
        if isinstance(bound, Reply):
            return bound
        data, declaration = bound
        error = self.provider_error(declaration, data)
        if error is None and self.find_model(declaration, "text-embedding", data["model"]) is None:
            error = invoke_error("InvokeBadRequestError", f"Model `{data['model']}` does not exist or you do not have access to it.")
        if error is None and key_problem(data.get("credentials") or {}):
            error = invoke_error("InvokeAuthorizationError", "Invalid API-key provided.")
        if error is not None:
            return Reply(200, lines=[error], type_=EmbeddingResult)
        texts = [str(t) for t in data.get("texts") or []]
        tokens = sum(count_tokens(t) for t in texts)
        result = {
            "model": data["model"],
            "embeddings": [fake_embedding(t) for t in texts],
            "usage": {
                "tokens": tokens,
                "total_tokens": tokens,
                "unit_price": "0.0005",
                "price_unit": "0.001",
                "total_price": f"{tokens * 0.0005 * 0.001:.7f}",
                "currency": "RMB",
                "latency": 0.02,
            },
        }
        return Reply(200, lines=[success(result)], type_=EmbeddingResult)

    def embedding_num_tokens(self, request, call, tenant_id):
        bound = self.dispatch(request, call, tenant_id, ("provider", "model", "model_type"))
        if isinstance(bound, Reply):
            return bound
        data, _ = bound
        counts = [count_tokens(str(t)) for t in data.get("texts") or []]
        return Reply(200, lines=[success({"num_tokens": counts})], type_=PluginTextEmbeddingNumTokensResponse)


# ----- the marketplace app ----------------------------------------------------------------------------------------


class MarketplaceApp:
    """The routes of MARKETPLACE_API_URL that Dify 1.14.1 calls (core/helper/marketplace.py)."""

    def __init__(self, state: State):
        self.state = state

    def lists_tongyi(self) -> bool:
        with self.state.lock:
            return bool(self.state.config.get("marketplace_lists_tongyi", True))

    def tongyi_entry(self) -> dict[str, Any]:
        declaration = self.state.tongyi_declaration
        return {
            "name": TONGYI_NAME,
            "org": TONGYI_AUTHOR,
            "plugin_id": TONGYI_PLUGIN_ID,
            "icon": f"/api/v1/plugins/{TONGYI_PLUGIN_ID}/icon",
            "label": declaration["label"],
            "brief": declaration["description"],
            "resource": declaration["resource"],
            "endpoint": {},
            "model": declaration["model"],
            "tool": None,
            "latest_version": declaration["version"],
            "latest_package_identifier": self.state.tongyi_unique_identifier,
            "status": "active",
            "deprecated_reason": "",
            "alternative_plugin_id": "",
        }

    def __call__(self, environ, start_response):
        request = Request(environ)
        call: dict[str, Any] = {"method": request.method, "path": request.path, "query": dict(request.args.items()), "at": now_iso(), "marketplace": True}
        try:
            response = self.route(request, call)
        except Exception as err:
            log(f"marketplace error: {err}\n{traceback.format_exc()}")
            response = Response(json.dumps({"code": -1, "msg": str(err)}), 500, content_type="application/json")
        call["status"] = response.status_code
        with self.state.lock:
            self.state.calls.append(call)
        return response(environ, start_response)

    def route(self, request: Request, call: dict[str, Any]) -> Response:
        path = request.path.rstrip("/")
        if request.method == "POST" and path == "/api/v1/plugins/batch":
            call["route"] = "/api/v1/plugins/batch"
            wanted = json_body(request).get("plugin_ids") or []
            call["body"] = {"plugin_ids": wanted}
            plugins = [self.tongyi_entry()] if TONGYI_PLUGIN_ID in wanted and self.lists_tongyi() else []
            for plugin in plugins:
                try:
                    MarketplacePluginDeclaration.model_validate(copy.deepcopy(plugin))
                except Exception as err:
                    call["invalid"] = f"not a valid MarketplacePluginDeclaration: {err}"
                    log(f"INVALID marketplace body: {err}")
                    return Response(json.dumps({"code": -1, "msg": call["invalid"]}), 500, content_type="application/json")
            return Response(dumps({"code": 0, "msg": "success", "data": {"plugins": plugins}}), 200, content_type="application/json")
        if request.method == "GET" and path == "/api/v1/plugins/download":
            call["route"] = "/api/v1/plugins/download"
            uid = request.args.get("unique_identifier", "")
            if uid == self.state.tongyi_unique_identifier and self.lists_tongyi():
                return Response(self.state.tongyi_package, 200, content_type="application/octet-stream")
            return Response(json.dumps({"code": 404, "msg": "plugin not found"}), 404, content_type="application/json")
        if request.method == "POST" and path == "/api/v1/stats/plugins/install_count":
            call["route"] = "/api/v1/stats/plugins/install_count"
            call["body"] = json_body(request)
            return Response(json.dumps({"code": 0, "msg": "success", "data": {}}), 200, content_type="application/json")
        if request.method == "GET" and path == "/api/v1/dist/plugins/manifest.json":
            call["route"] = "/api/v1/dist/plugins/manifest.json"
            plugins = []
            if self.lists_tongyi():
                plugins.append(
                    {
                        "org": TONGYI_AUTHOR,
                        "name": TONGYI_NAME,
                        "latest_version": self.state.tongyi_declaration["version"],
                        "latest_package_identifier": self.state.tongyi_unique_identifier,
                        "latest_package_url": f"{request.host_url}api/v1/plugins/download?unique_identifier={self.state.tongyi_unique_identifier}",
                    }
                )
            for plugin in plugins:
                MarketplacePluginSnapshot.model_validate(plugin)
            return Response(json.dumps({"plugins": plugins}), 200, content_type="application/json")
        call.update(route=None, unhandled=True)
        log(f"marketplace: no route for {request.method} {request.path}")
        return Response(json.dumps({"code": 404, "msg": "not found"}), 404, content_type="application/json")


# ----- main -------------------------------------------------------------------------------------------------------


class QuietHandler(WSGIRequestHandler):
    def log_request(self, code="-", size="-"):
        pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--work-dir", required=True)
    parser.add_argument("--config", default="{}")
    args = parser.parse_args()

    state = State(args.api_key, json.loads(args.config))
    package_path = os.path.join(args.work_dir, f"{TONGYI_AUTHOR}-{TONGYI_NAME}_{TONGYI_VERSION}.difypkg")
    with open(package_path, "wb") as file:
        file.write(state.tongyi_package)

    daemon = make_server("127.0.0.1", 0, DaemonApp(state), threaded=True, request_handler=QuietHandler)
    marketplace = make_server("127.0.0.1", 0, MarketplaceApp(state), threaded=True, request_handler=QuietHandler)
    for server in (daemon, marketplace):
        threading.Thread(target=server.serve_forever, daemon=True).start()

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    def watch_stdin():
        # The parent closing stdin (or dying) ends the stand-in.
        while sys.stdin.buffer.read(4096):
            pass
        stop.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    print(
        json.dumps(
            {
                "daemon_port": daemon.server_port,
                "marketplace_port": marketplace.server_port,
                "package_path": package_path,
                "unique_identifier": state.tongyi_unique_identifier,
            }
        ),
        flush=True,
    )
    while not stop.wait(0.5):
        pass
    for server in (daemon, marketplace):
        server.shutdown()


if __name__ == "__main__":
    main()
