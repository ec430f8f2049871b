"""Every bad input: exit 2, one `Error:` line, no traceback, nothing written, inputs intact."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from safetensors_files import f32_header, write_raw
from tiny_models import CASES_BY_ID, make_config, make_model
from typer.testing import CliRunner

from gpt2tie.cli import app

runner = CliRunner()


def _config(folder: Path, case_id: str = "gpt2-tied") -> None:
    make_config(CASES_BY_ID[case_id]).save_pretrained(folder)


def _checkpoint(folder: Path) -> None:
    make_model(CASES_BY_ID["gpt2-tied"]).save_pretrained(folder)


def _sharded(folder: Path) -> list[str]:
    make_model(CASES_BY_ID["gpt2-tied"]).save_pretrained(folder, max_shard_size="20KB")
    return sorted(p.name for p in folder.glob("model-*.safetensors"))


def _edit_index(folder: Path, edit: Callable[[dict[str, str]], None]) -> None:
    index_path = folder / "model.safetensors.index.json"
    index = json.loads(index_path.read_text())
    edit(index["weight_map"])
    index_path.write_text(json.dumps(index))


def no_config(folder: Path) -> None:
    (folder / "README.md").write_text("hi")


def config_not_json(folder: Path) -> None:
    (folder / "config.json").write_text("{not json")


def config_not_object(folder: Path) -> None:
    (folder / "config.json").write_text("[1, 2]")


def config_no_model_type(folder: Path) -> None:
    (folder / "config.json").write_text('{"vocab_size": 3}')


def unknown_model_type(folder: Path) -> None:
    (folder / "config.json").write_text('{"model_type": "no-such-model", "architectures": ["X"]}')


def unknown_class(folder: Path) -> None:
    (folder / "config.json").write_text('{"model_type": "gpt2", "architectures": ["NoSuchModel"]}')


def no_architectures(folder: Path) -> None:
    (folder / "config.json").write_text('{"model_type": "gpt2"}')


def config_cannot_build(folder: Path) -> None:
    config = make_config(CASES_BY_ID["marian"])
    config.pad_token_id = 10_000  # outside the vocabulary: nn.Embedding refuses it
    config.save_pretrained(folder)


def corrupt_safetensors(folder: Path) -> None:
    _config(folder)
    write_raw(folder / "model.safetensors", b"{garbage")


def truncated_safetensors(folder: Path) -> None:
    _checkpoint(folder)
    path = folder / "model.safetensors"
    path.write_bytes(path.read_bytes()[:-100])


def header_longer_than_file(folder: Path) -> None:
    _config(folder)
    header, data = f32_header(w=[2])
    write_raw(folder / "model.safetensors", header, data, length=10_000)


def bad_offsets(folder: Path) -> None:
    _config(folder)
    write_raw(
        folder / "model.safetensors",
        {"w": {"dtype": "F32", "shape": [2], "data_offsets": [-4, 4]}},
        bytes(8),
    )


def header_over_limit(folder: Path) -> None:
    _config(folder)
    header, data = f32_header(w=[2])
    write_raw(folder / "model.safetensors", header, data, length=200 * 1024 * 1024)


def shard_absent(folder: Path) -> None:
    (folder / _sharded(folder)[0]).unlink()


def shard_outside_folder(folder: Path) -> None:
    _sharded(folder)
    _edit_index(folder, lambda wm: wm.update({next(iter(wm)): "../elsewhere.safetensors"}))


def shard_absolute_path(folder: Path) -> None:
    _sharded(folder)
    _edit_index(folder, lambda wm: wm.update({next(iter(wm)): "/etc/passwd"}))


def tensor_in_wrong_shard(folder: Path) -> None:
    shards = _sharded(folder)

    def move(wm: dict[str, str]) -> None:
        name = next(k for k, v in wm.items() if v == shards[0])
        wm[name] = shards[1]

    _edit_index(folder, move)


def tensor_in_two_shards(folder: Path) -> None:
    shards = _sharded(folder)
    from safetensors.torch import load_file, save_file

    first = load_file(str(folder / shards[0]))
    second = load_file(str(folder / shards[1]))
    name, tensor = next(iter(first.items()))
    save_file({**second, name: tensor.clone()}, str(folder / shards[1]))


def index_not_json(folder: Path) -> None:
    _sharded(folder)
    (folder / "model.safetensors.index.json").write_text("nope")


def remote_code(folder: Path) -> None:
    marker = folder / "MARKER"
    (folder / "modeling_evil.py").write_text(
        f"open({str(marker)!r}, 'w').write('ran')\n"
        "from transformers import PreTrainedModel\nclass EvilModel(PreTrainedModel):\n    pass\n"
    )
    (folder / "configuration_evil.py").write_text(
        f"open({str(marker)!r}, 'w').write('ran')\n"
        "from transformers import PretrainedConfig\n"
        "class EvilConfig(PretrainedConfig):\n    model_type = 'evil'\n"
    )
    (folder / "config.json").write_text(
        json.dumps(
            {
                "model_type": "evil",
                "architectures": ["EvilModel"],
                "auto_map": {
                    "AutoConfig": "configuration_evil.EvilConfig",
                    "AutoModel": "modeling_evil.EvilModel",
                },
            }
        )
    )


BAD_FOLDERS: dict[str, tuple[Callable[[Path], None], str]] = {
    "no-config": (no_config, "no config.json"),
    "config-not-json": (config_not_json, "config.json is not valid JSON"),
    "config-not-object": (config_not_object, "not a JSON object"),
    "config-no-model-type": (config_no_model_type, "no model_type"),
    "unknown-model-type": (unknown_model_type, "unknown to transformers"),
    "unknown-class": (unknown_class, "no model class 'NoSuchModel'"),
    "no-architectures": (no_architectures, "--class"),
    "config-cannot-build": (config_cannot_build, "cannot build MarianMTModel"),
    "corrupt-safetensors": (corrupt_safetensors, "model.safetensors: "),
    "truncated-safetensors": (truncated_safetensors, "truncated"),
    "header-longer-than-file": (header_longer_than_file, "runs past the end"),
    "header-over-limit": (header_over_limit, "100 MB limit"),
    "bad-offsets": (bad_offsets, "data_offsets [-4, 4] is not [begin, end]"),
    "shard-absent": (shard_absent, "which is absent"),
    "shard-outside-folder": (shard_outside_folder, "outside the checkpoint folder"),
    "shard-absolute-path": (shard_absolute_path, "outside the checkpoint folder"),
    "tensor-in-wrong-shard": (tensor_in_wrong_shard, "which does not hold it"),
    "tensor-in-two-shards": (tensor_in_two_shards, "is stored in both"),
    "index-not-json": (index_not_json, "is not valid JSON"),
    "remote-code": (remote_code, "--trust-remote-code"),
}


@pytest.mark.parametrize("command", ["inspect", "count-params", "check"])
@pytest.mark.parametrize("case", list(BAD_FOLDERS))
def test_bad_folder(case: str, command: str, tmp_path: Path, unchanged: list[Path]) -> None:
    make, expected = BAD_FOLDERS[case]
    folder = tmp_path / "model"
    folder.mkdir()
    make(folder)
    unchanged.append(tmp_path)
    result = runner.invoke(app, [command, str(folder), "--json"], env={"COLUMNS": "80"})
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1, result.stderr
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert not (folder / "MARKER").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["inspect", "/definitely/not/here"], "not a local folder"),
        (["inspect", "no-such-builtin"], "tried: local folder, HF cache, Hub, built-in configs"),
        (["inspect", "not a repo id!"], "not a Hub repo id"),
        (["count-params", "gpt2", "--depth", "0"], "--depth"),
        (["inspect", "gpt2", "--fail-on", "sometimes"], "--fail-on"),
        (["inspect", "gpt2", "--class", "NoSuchModel"], "no model class"),
        # A parameter where the model belongs: a hint, not a Hub lookup (#41).
        (["explain", "lm_head"], "'lm_head' is a parameter name, not a model"),
        (["explain", "transformer.wte.weight"], "explain gpt2 transformer.wte.weight"),
        # Refused before any work: the model is never looked for (#41).
        (["count-params", "/not/here", "--format", "github"], "is not one of 'text', 'json'"),
        (["explain", "/not/here", "--format", "markdown"], "is not one of 'text', 'json'"),
        (["frobnicate"], "No such command"),
        # nan and inf parse as floats (round three, N7)
        (["inspect", "org/name", "--timeout", "nan"], "must be at least 1, and finite"),
        (["inspect", "org/name", "--timeout", "inf"], "must be at least 1, and finite"),
        (["inspect", "org/name", "--timeout", "-inf"], "must be at least 1, and finite"),
    ],
)
def test_bad_arguments(argv: list[str], expected: str) -> None:
    result = runner.invoke(app, argv, env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert expected in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("timeout", [float("nan"), float("inf"), 0.0, -5.0, 0.5])
def test_api_timeout_must_be_finite_seconds(timeout: float) -> None:
    import gpt2tie
    from gpt2tie.base.errors import InputError

    # The CLI's rule for --timeout (0.5 was taken by the API and refused by the CLI).
    with pytest.raises(InputError, match=r"timeout \(--timeout\) must be at least 1, and finite"):
        gpt2tie.inspect("org/name", timeout=timeout)


@pytest.mark.parametrize("configured", ["nan", "inf", "-1", "0", "soon"])
def test_environment_timeout_that_is_no_duration_means_the_default(
    configured: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gpt2tie.requests.request import DEFAULT_TIMEOUT, SourceOptions
    from gpt2tie.sources.hub_http import deadline_seconds

    monkeypatch.setenv("GPT2TIE_TIMEOUT", configured)
    assert deadline_seconds(SourceOptions()) == DEFAULT_TIMEOUT


def test_file_instead_of_folder(tmp_path: Path) -> None:
    _config(tmp_path)
    result = runner.invoke(app, ["inspect", str(tmp_path / "config.json")])
    assert result.exit_code == 2 and "not a folder" in result.stderr


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    config_not_json(tmp_path)
    result = runner.invoke(app, ["inspect", str(tmp_path)], env={"GPT2TIE_DEBUG": "1"})
    assert result.exit_code != 0
    assert type(result.exception).__name__ == "InputError"


def test_read_only_inputs(tmp_path: Path, unchanged: list[Path]) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    _checkpoint(folder)
    for path in folder.iterdir():
        path.chmod(0o444)
    folder.chmod(0o555)
    unchanged.append(folder)
    try:
        result = runner.invoke(app, ["inspect", str(folder), "--json"])
        assert result.exit_code == 0
    finally:
        folder.chmod(0o755)


# --- what the file system refuses is the user's input, never an internal error (round three, N5)

LONG = "a" * 300  # one path component longer than any Linux file system allows (255)


def _long_shard_name(folder: Path) -> None:
    _config(folder)
    _checkpoint(folder)
    (folder / "model.safetensors").rename(folder / "weights.safetensors")
    names = json.loads(json.dumps(list(_tensor_names(folder / "weights.safetensors"))))
    index = {"metadata": {}, "weight_map": {name: f"{LONG}.safetensors" for name in names}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    (folder / "weights.safetensors").unlink()


def _tensor_names(file: Path) -> list[str]:
    header_size = int.from_bytes(file.read_bytes()[:8], "little")
    header = json.loads(file.read_bytes()[8 : 8 + header_size])
    return [name for name in header if name != "__metadata__"]


def _long_adapter_base(folder: Path) -> None:
    config = {"peft_type": "LORA", "base_model_name_or_path": f"/tmp/{LONG}", "r": 2}
    config.update(lora_alpha=4, target_modules=["c_attn"])
    (folder / "adapter_config.json").write_text(json.dumps(config))
    write_raw(folder / "adapter_model.safetensors", *f32_header())


def test_the_system_refuses_a_name_that_long(tmp_path: Path) -> None:
    import errno
    import os

    with pytest.raises(OSError) as refused:
        os.stat(tmp_path / LONG)
    assert refused.value.errno == errno.ENAMETOOLONG  # the truth the cases below rely on


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (lambda tmp: ["inspect", LONG], "(300 characters): File name too long"),
        (lambda tmp: ["inspect", f"{tmp}/{LONG}/x"], "File name too long"),
        (lambda tmp: ["count-params", f"{tmp}/{LONG}"], "File name too long"),
        (lambda tmp: ["inspect", str(_made(tmp, _long_shard_name))], "File name too long"),
        (lambda tmp: ["inspect", str(_made(tmp, _long_adapter_base))], "File name too long"),
        pytest.param(
            lambda tmp: ["untie", "CKPT", "--out", "~nonexistentuser/x"],
            "no home folder",
            marks=pytest.mark.needs_transformers5,  # untie refuses under transformers 4
        ),
        pytest.param(
            lambda tmp: ["untie", "CKPT", "--out", f"{tmp}/{LONG}/x"],
            "File name too long",
            marks=pytest.mark.needs_transformers5,
        ),
    ],
    ids=["model", "model-inside", "count-params", "shard-name", "adapter-base", "out-user", "out"],
)
def test_file_system_refusals_are_one_input_error(
    argv: Callable[[Path], list[str]],
    expected: str,
    tmp_path: Path,
    checkpoint_dir: Callable[[str], Path],
) -> None:
    checkpoint = str(checkpoint_dir("gpt2-tied"))
    words = [checkpoint if word == "CKPT" else word for word in argv(tmp_path)]
    result = runner.invoke(app, words, env={"COLUMNS": "80"})
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1, result.stderr
    assert expected in result.stderr
    assert len(result.stderr) < 400  # a long name is cut in the middle, its length said
    assert not (Path.cwd() / "~nonexistentuser").exists()


def _made(tmp_path: Path, make: Callable[[Path], None]) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    make(folder)
    return folder


@pytest.mark.needs_transformers5  # untie refuses under transformers 4
def test_untie_skips_a_loop_of_links_among_the_source_files(
    tmp_path: Path, checkpoint_dir: Callable[[str], Path]
) -> None:
    import shutil

    source = tmp_path / "source"
    shutil.copytree(checkpoint_dir("gpt2-tied"), source)
    (source / "a").symlink_to(source / "b")
    (source / "b").symlink_to(source / "a")
    result = runner.invoke(app, ["untie", str(source), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "not copied: a: a loop of symbolic links" in result.stderr
    assert (
        not (tmp_path / "out" / "a").exists() and (tmp_path / "out" / "model.safetensors").exists()
    )


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ([f"model-{n:05d}.gguf" for n in range(20_000)], "holds 20,000 GGUF models"),
        (["m-00001-of-99999.gguf"], "parts are missing (99,998)"),
    ],
    ids=["many-models", "missing-parts"],
)
def test_an_error_listing_names_stays_one_short_line(
    files: list[str], expected: str, tmp_path: Path
) -> None:
    folder = tmp_path / "ggufs"
    folder.mkdir()
    for name in files:
        (folder / name).write_bytes(b"")
    result = runner.invoke(app, ["inspect", str(folder)], env={"COLUMNS": "80"})
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1
    assert expected in result.stderr and "more" in result.stderr
    assert len(result.stderr) < 2000
