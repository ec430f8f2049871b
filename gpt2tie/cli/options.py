"""The options and arguments the commands share, declared once (Typer needs them per command)."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated, Any

import typer

HUB_PANEL = "Hub and HF cache"
VALUES_PANEL = "Tensor values"
MEMORY_PANEL = "Memory (--memory)"


class PreferValues(str, enum.Enum):
    embedding = "embedding"
    head = "head"


class OutputChoice(str, enum.Enum):
    text = "text"
    json = "json"
    github = "github"
    markdown = "markdown"


class DataOutputChoice(str, enum.Enum):
    """The formats of a command with no CI rendering (count-params, explain, list-builtin)."""

    text = "text"
    json = "json"


FormatOption = Annotated[
    OutputChoice | None,
    typer.Option(
        "--format",
        metavar="FORMAT",
        help="text (default), json (the documented JSON of docs/json.md), github (workflow "
        "annotations) or markdown (a PR comment).",
        show_default=False,
    ),
]
DataFormatOption = Annotated[
    DataOutputChoice | None,
    typer.Option(
        "--format",
        metavar="FORMAT",
        help="text (default) or json (the documented JSON of docs/json.md).",
        show_default=False,
    ),
]


AllowOption = Annotated[
    list[str] | None,
    typer.Option(
        "--allow",
        metavar="CODE",
        help="A difference code to report without failing (e.g. vocab-resized); repeatable.",
        show_default=False,
    ),
]


class FailOn(str, enum.Enum):
    error = "error"
    warning = "warning"
    info = "info"
    never = "never"


ModelArgument = Annotated[
    str | None,
    typer.Argument(
        metavar="MODEL",
        help="A local folder with config.json (and optionally weights), a GGUF file, a Hub "
        "repo id (org/name), or a built-in config such as gpt2. Default: the current folder, "
        "when it holds a config.json. Built-in configs: gpt2tie list-builtin.",
        show_default=False,
    ),
]
CheckpointFolderArgument = Annotated[
    str | None,
    typer.Argument(
        metavar="MODEL",
        help="A local Hugging Face checkpoint folder: config.json and its weights (safetensors "
        "or .bin) on disk. Default: the current folder. Not a GGUF file, a PEFT adapter, a Hub "
        "id or a built-in config: download the repo first (hf download ORG/NAME --local-dir DIR).",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="The same as --format json.")]
ClassOption = Annotated[
    str | None,
    typer.Option(
        "--class",
        metavar="CLASS",
        help="Model class to build instead of the config's first architecture.",
        show_default=False,
    ),
]
TrustOption = Annotated[
    bool,
    typer.Option("--trust-remote-code", help="Allow a config's auto_map custom code to run."),
]


NoCacheOption = Annotated[
    bool,
    typer.Option("--no-cache", help="Recompute instead of reusing gpt2tie's result cache."),
]
MaxModulesOption = Annotated[
    int | None,
    typer.Option(
        "--max-modules",
        metavar="N",
        help="Refuse configs that build more modules than this (default 20,000; 200,000 "
        "under transformers 4, which builds one module per MoE expert; or GPT2TIE_MAX_MODULES).",
        show_default=False,
    ),
]
ValuesOption = Annotated[
    bool | None,
    typer.Option(
        "--values/--no-values",
        help="Compare the stored values a tie decision needs (default: on for local files, off "
        "for the Hub, where it downloads those tensors' bytes). --no-values reads no tensor data.",
        show_default=False,
        rich_help_panel=VALUES_PANEL,
    ),
]
RevisionOption = Annotated[
    str | None,
    typer.Option(
        "--revision",
        metavar="REV",
        help="Hub branch, tag or commit (default: main).",
        show_default=False,
        rich_help_panel=HUB_PANEL,
    ),
]
TokenOption = Annotated[
    str | None,
    typer.Option(
        "--token",
        metavar="TOKEN",
        help="Hub token (default: HF_TOKEN, else the token hf auth login stored).",
        show_default=False,
        rich_help_panel=HUB_PANEL,
    ),
]
OfflineOption = Annotated[
    bool,
    typer.Option(
        "--offline",
        help="Never contact the Hub (also: HF_HUB_OFFLINE=1).",
        rich_help_panel=HUB_PANEL,
    ),
]
SubfolderOption = Annotated[
    str,
    typer.Option(
        "--subfolder",
        metavar="PATH",
        help="Folder inside the repo or local folder.",
        rich_help_panel=HUB_PANEL,
    ),
]
TimeoutOption = Annotated[
    float | None,
    typer.Option(
        "--timeout",
        metavar="SECONDS",
        help="Give up on the Hub after this long in all (default 120, or GPT2TIE_TIMEOUT).",
        show_default=False,
        rich_help_panel=HUB_PANEL,
    ),
]
CacheDirOption = Annotated[
    # Text, not a Path: Path("") is the current folder, while an empty value means unset.
    str | None,
    typer.Option(
        "--cache-dir",
        metavar="PATH",
        help="HF cache folder (default: huggingface_hub's).",
        show_default=False,
        rich_help_panel=HUB_PANEL,
    ),
]
GGUF_PANEL = "GGUF files"
GgufFileOption = Annotated[
    str | None,
    typer.Option(
        "--gguf-file",
        metavar="NAME",
        help="The GGUF file to read, in a folder or Hub repo that holds several.",
        show_default=False,
        rich_help_panel=GGUF_PANEL,
    ),
]
HfOption = Annotated[
    str | None,
    typer.Option(
        "--hf",
        metavar="MODEL",
        help="Compare a GGUF file's tie with this Hugging Face model (default: the one its "
        "metadata names, when reachable).",
        show_default=False,
        rich_help_panel=GGUF_PANEL,
    ),
]


BaseModelOption = Annotated[
    str | None,
    typer.Option(
        "--base-model",
        metavar="MODEL",
        help="For a PEFT adapter folder: its base model (default: the adapter config's "
        "base_model_name_or_path).",
        show_default=False,
    ),
]
# The old name of --base-model, still accepted, no longer shown.
BaseAliasOption = Annotated[str | None, typer.Option("--base", hidden=True, show_default=False)]
LoadOption = Annotated[
    bool,
    typer.Option(
        "--load",
        help="Ground truth: really run from_pretrained on the CPU (reads all weights) and "
        "report what it did.",
        rich_help_panel=VALUES_PANEL,
    ),
]


OutOption = Annotated[
    Path,
    typer.Option(
        "--out", metavar="FOLDER", help="The new checkpoint folder (must not exist, or be empty)."
    ),
]
HeadsOption = Annotated[
    list[str] | None,
    typer.Option(
        "--heads",
        metavar="HEAD",
        help="Heads to change (default: all; tie_word_embeddings switches them together).",
    ),
]
ForceOption = Annotated[bool, typer.Option("--force", help="Replace a non-empty --out folder.")]


MemoryFlagOption = Annotated[
    bool,
    typer.Option(
        "--memory",
        help="Also estimate memory: weights per dtype, KV cache, AdamW training, MoE "
        "active parameters (a tied pair counted once).",
        rich_help_panel=MEMORY_PANEL,
    ),
]

DepthOption = Annotated[
    int,
    typer.Option("--depth", metavar="N", help="How many module levels to break down."),
]

ContextOption = Annotated[
    int | None,
    typer.Option(
        "--context",
        metavar="TOKENS",
        help="Tokens per sequence the KV cache is sized for (default: the model's maximum, "
        "from its config; 4,096 if it names none).",
        rich_help_panel=MEMORY_PANEL,
    ),
]

BatchOption = Annotated[
    int,
    typer.Option(
        "--batch",
        metavar="N",
        help="Sequences the KV cache is sized for.",
        rich_help_panel=MEMORY_PANEL,
    ),
]

BaselineOption = Annotated[
    str | None,
    typer.Option(
        "--baseline",
        metavar="BASE",
        help="Fail on differences (warning or above: ties, heads, counts, load) from BASE, a "
        "model or a saved `inspect --json` report.",
        show_default=False,
    ),
]

CompareValuesOption = Annotated[
    bool,
    typer.Option(
        "--compare-values",
        help="Also compare the values of every tensor stored on both sides (reads them, streamed).",
    ),
]


# The request's options as the commands take them: parameter name (the keyword of
# `build_request`, but for --no-cache and the hidden --base) -> (its Annotated type, its
# default), in the order help shows them. A new option is declared above and listed here.
REQUEST_OPTIONS: dict[str, tuple[Any, Any]] = {
    "class_name": (ClassOption, None),
    "trust_remote_code": (TrustOption, False),
    "check_values": (ValuesOption, None),
    "load": (LoadOption, False),
    "base_model": (BaseModelOption, None),
    "base_alias": (BaseAliasOption, None),
    "no_cache": (NoCacheOption, False),
    "max_modules": (MaxModulesOption, None),
    "revision": (RevisionOption, None),
    "token": (TokenOption, None),
    "offline": (OfflineOption, False),
    "subfolder": (SubfolderOption, ""),
    "cache_dir": (CacheDirOption, None),
    "timeout": (TimeoutOption, None),
    "gguf_file": (GgufFileOption, None),
    "hf": (HfOption, None),
}
# count-params' own: the module breakdown and the memory estimate.
COUNT_OPTIONS: dict[str, tuple[Any, Any]] = {
    "depth": (DepthOption, 1),
    "memory": (MemoryFlagOption, False),
    "context": (ContextOption, None),
    "batch": (BatchOption, 1),
}
