"""GGUF files written with the `gguf` package from tiny real HF models: ties and counts compared
with the HF model they came from, the header reader with llama.cpp's reference reader."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import gguf
import gguf_models
import jsonschema
import pytest
import torch
from fake_hub import FakeHub
from gguf import GGMLQuantizationType as Q
from type_schema import strict_schema
from typer.testing import CliRunner

from gpt2tie.cli import app
from gpt2tie.formats.file_access import LocalFiles
from gpt2tie.formats.gguf import read_gguf_header
from gpt2tie.formats.gguf_reader import GgufArray
from gpt2tie.formats.gguf_types import ALWAYS_TIED, FILE_TYPES, GGML_TYPES, NO_OUTPUT_HEAD

runner = CliRunner()
SCHEMA = strict_schema("report-v1.schema.json")


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("gguf")
    hf = {
        "llama-tied": gguf_models.save_hf("llama", root / "hf-llama-tied", tied=True),
        "llama-untied": gguf_models.save_hf("llama", root / "hf-llama-untied", tied=False),
        "gpt2": gguf_models.save_hf("gpt2", root / "hf-gpt2", tied=True),
    }
    files = root / "files"
    files.mkdir()
    out = {f"hf-{k}": v for k, v in hf.items()}
    out["tied"] = gguf_models.convert(hf["llama-tied"], files / "tied-Q8_0.gguf")
    out["untied"] = gguf_models.convert(
        hf["llama-untied"],
        files / "untied-Q4_K_M.gguf",
        matrix_type=Q.Q4_K,
        types={"output.weight": Q.Q6_K},
    )
    out["untied-same"] = gguf_models.convert(
        hf["llama-untied"], files / "untied-same-Q4_0.gguf", matrix_type=Q.Q4_0
    )
    out["gpt2-copy"] = gguf_models.convert(hf["gpt2"], files / "gpt2.gguf", copy_tied_output=True)
    out["head-dropped"] = gguf_models.convert(
        hf["llama-untied"], files / "dropped.gguf", drop=("output.weight",)
    )
    split = root / "split"
    split.mkdir()
    gguf_models.convert(hf["llama-tied"], split / "m.gguf", split_max_tensors=7)
    out["split"] = split
    return out


def invoke(*args: str) -> Any:
    return runner.invoke(app, list(args), env={"COLUMNS": "100"})


def report_of(*args: str) -> dict[str, Any]:
    result = invoke("inspect", *args, "--json")
    assert result.exit_code == 0, result.output
    report: dict[str, Any] = json.loads(result.stdout)
    jsonschema.validate(report, SCHEMA, cls=jsonschema.Draft202012Validator)
    return report


def reference_tensors(path: Path) -> dict[str, Any]:
    reader = gguf.GGUFReader(path)
    return {t.name: t for t in reader.tensors}


# --- the reader against llama.cpp's reference reader ---------------------------------------


def test_type_tables_match_the_gguf_package() -> None:
    reference = {int(t): (t.name, *gguf.GGML_QUANT_SIZES[t]) for t in gguf.GGMLQuantizationType}
    ours = {i: (t.name, t.block_size, t.type_size) for i, t in GGML_TYPES.items()}
    assert ours == reference
    assert {int(t): t.name for t in gguf.LlamaFileType} == FILE_TYPES


def test_architectures_without_output_tensor_are_all_classified() -> None:
    """Every architecture gguf defines without `output` is either headless or always tied."""
    without_output = {
        gguf.MODEL_ARCH_NAMES[arch]
        for arch, tensors in gguf.MODEL_TENSORS.items()
        if gguf.MODEL_TENSOR.OUTPUT not in tensors
    }
    assert without_output == NO_OUTPUT_HEAD | ALWAYS_TIED
    assert not NO_OUTPUT_HEAD & ALWAYS_TIED


@pytest.mark.parametrize("which", ["tied", "untied", "gpt2-copy", "split"])
def test_header_matches_gguf_reader(built: dict[str, Path], which: str) -> None:
    paths = sorted(built[which].glob("*.gguf")) if which == "split" else [built[which]]
    for path in paths:
        ours = read_gguf_header(LocalFiles(path.parent), path.name)
        reader = gguf.GGUFReader(path)
        assert ours.version == int(reader.fields["GGUF.version"].parts[-1][0])
        assert ours.data_start == reader.data_offset
        expected = {
            t.name: (tuple(int(d) for d in t.shape), t.tensor_type.name, int(t.n_elements))
            for t in reader.tensors
        }
        got = {t.name: (t.dims, t.ggml_type.name, t.numel) for t in ours.tensors}
        assert got == expected
        for tensor in reader.tensors:
            mine = next(t for t in ours.tensors if t.name == tensor.name)
            assert ours.data_start + mine.offset == tensor.data_offset
            assert mine.nbytes == tensor.n_bytes
        reader_keys = {k for k in reader.fields if not k.startswith("GGUF.")}
        assert set(ours.metadata) == reader_keys
        scalars = [k for k in reader_keys if not isinstance(ours.metadata[k], GgufArray)]
        assert scalars  # the first file of a split holds the model's metadata, others split.*
        for key in scalars:
            assert ours.metadata[key] == pytest.approx(reader.fields[key].contents()), key
        if "tokenizer.ggml.tokens" in reader_keys:
            tokens = ours.metadata["tokenizer.ggml.tokens"]
            assert tokens.length == len(reader.fields["tokenizer.ggml.tokens"].data)
            assert tokens.items is None  # a vocabulary is skipped, not kept


# --- ties and counts against the HF model the file came from ---------------------------------


def test_tied_llama_matches_its_hf_model(built: dict[str, Path]) -> None:
    truth = gguf_models.hf_truth(built["hf-llama-tied"])
    assert truth["head_tied"]
    report = report_of(str(built["tied"]))
    (head,) = report["heads"]
    assert head["tied"] and head["tied_to"] == "token_embd.weight"
    assert not head["stored_in_checkpoint"]
    assert report["parameters"]["unique"] == truth["unique"]
    assert report["parameters"]["with_duplicates"] == truth["with_duplicates"]
    (group,) = report["alias_groups"]
    assert group["names"] == ["token_embd.weight", "output.weight"]
    assert group["numel"] == truth["embedding_numel"]
    assert report["checkpoint"]["format"] == "gguf"
    assert report["findings"] == []
    # The head is a name the file does not store; a GGUF report reads no tensor values.
    reader_names = set(reference_tensors(built["tied"]))
    assert "output.weight" not in reader_names
    checkpoint = report["checkpoint"]
    assert checkpoint["parameters_not_stored"] == ["output.weight"]
    assert (checkpoint["values_checked"], checkpoint["values_bytes_read"]) == (False, 0)
    untied = report_of(str(built["untied"]))["checkpoint"]
    assert untied["parameters_not_stored"] == []
    assert "output.weight" in reference_tensors(built["untied"])


def test_untied_llama_matches_its_hf_model(built: dict[str, Path]) -> None:
    truth = gguf_models.hf_truth(built["hf-llama-untied"])
    report = report_of(str(built["untied"]))
    (head,) = report["heads"]
    assert not head["tied"] and head["stored_in_checkpoint"]
    assert report["parameters"]["unique"] == truth["unique"]
    assert report["parameters"]["with_duplicates"] == truth["with_duplicates"]
    gguf_section = report["checkpoint"]["gguf"]
    assert (gguf_section["embedding_type"], gguf_section["output_type"]) == ("Q4_K", "Q6_K")
    (finding,) = report["findings"]
    assert finding["code"] == "gguf-output-quantized-differently"
    assert finding["names"] == ["output.weight", "token_embd.weight"]
    same = report_of(str(built["untied-same"]))
    assert same["findings"] == []


def test_per_type_counts_match_the_reference_reader(built: dict[str, Path]) -> None:
    tensors = reference_tensors(built["untied"]).values()
    expected: dict[str, list[int]] = {}
    for tensor in tensors:
        entry = expected.setdefault(tensor.tensor_type.name, [0, 0, 0])
        entry[0] += 1
        entry[1] += int(tensor.n_elements)
        entry[2] += int(tensor.n_bytes)
    result = invoke("count-params", str(built["untied"]), "--json")
    assert result.exit_code == 0, result.output
    counts = json.loads(result.stdout)
    jsonschema.validate(counts, SCHEMA, cls=jsonschema.Draft202012Validator)
    rows = counts["by_dtype"]
    got = {row["dtype"]: [row["tensors"], row["parameters"], row["bytes"]] for row in rows}
    assert got == expected
    gguf_rows = report_of(str(built["untied"]))["checkpoint"]["gguf"]["by_type"]
    assert {r["type"]: [r["tensors"], r["parameters"], r["bytes"]] for r in gguf_rows} == expected


def test_count_params_modules_and_the_same_counts_as_inspect(built: dict[str, Path]) -> None:
    result = invoke("count-params", str(built["tied"]), "--depth", "2", "--json")
    counts = json.loads(result.stdout)
    assert counts["parameters"] == report_of(str(built["tied"]))["parameters"]
    rows = {row["name"]: row for row in counts["modules"]}
    tensors = reference_tensors(built["tied"])
    block0 = sum(int(t.n_elements) for n, t in tensors.items() if n.startswith("blk.0."))
    assert rows["blk.0"]["parameters"] == block0
    assert rows["output"]["owned"] == 0
    assert (rows["output"]["class"], rows["output"]["depth"]) == ("GGUF", 1)
    assert {row["class"] for row in counts["modules"]} == {"GGUF"}  # no class names in a GGUF
    assert rows["output"]["parameters"] == int(tensors["token_embd.weight"].n_elements)
    assert (
        sum(r["owned"] for r in counts["modules"] if r["depth"] == 1)
        == counts["parameters"]["unique"]
    )


def test_gpt2_conversion_copies_the_tied_head_and_counts_reconcile(
    built: dict[str, Path],
) -> None:
    truth = gguf_models.hf_truth(built["hf-gpt2"])
    report = report_of(str(built["gpt2-copy"]), "--hf", str(built["hf-gpt2"]))
    (head,) = report["heads"]
    assert not head["tied"]
    output = reference_tensors(built["gpt2-copy"])["output.weight"]
    # The stored copy is exactly what separates the two counts of the HF model.
    assert report["parameters"]["unique"] == truth["unique"] + int(output.n_elements)
    assert report["parameters"]["unique"] == truth["with_duplicates"]
    (finding,) = report["findings"]
    assert finding["code"] == "output-untied-in-gguf" and finding["severity"] == "warning"
    assert finding["names"] == ["output.weight"]
    assert f"{built['hf-gpt2']} (named by --hf)" in finding["message"]
    reference = report["checkpoint"]["gguf"]["reference"]
    assert reference["found_by"] == "--hf" and reference["head_tied"] is True
    assert reference["unique_parameters"] == truth["unique"]


def test_untied_model_converted_without_its_head_is_an_error(built: dict[str, Path]) -> None:
    assert not gguf_models.hf_truth(built["hf-llama-untied"])["head_tied"]
    hf = str(built["hf-llama-untied"])
    report = report_of(str(built["head-dropped"]), "--hf", hf)
    assert [f["code"] for f in report["findings"]] == ["output-tied-in-gguf"]
    assert report["findings"][0]["names"] == ["output.weight", "token_embd.weight"]
    counts = invoke("count-params", str(built["head-dropped"]), "--hf", hf, "--json")
    assert json.loads(counts.stdout)["findings"] == report["findings"]
    gate = invoke("check", str(built["head-dropped"]), "--hf", hf)
    assert gate.exit_code == 1
    assert "output-tied-in-gguf" in gate.stdout


@pytest.mark.parametrize("gguf, hf", [("tied", "hf-llama-tied"), ("untied", "hf-llama-untied")])
def test_a_reference_that_agrees_adds_no_tie_finding(
    built: dict[str, Path], gguf: str, hf: str
) -> None:
    """The GGUF keeps the HF model's tie (both tied, or both with their own head): nothing to
    say about the tie, whichever way it goes."""
    truth = gguf_models.hf_truth(built[hf])
    report = report_of(str(built[gguf]), "--hf", str(built[hf]))
    (head,) = report["heads"]
    assert head["tied"] is truth["head_tied"]
    assert report["checkpoint"]["gguf"]["reference"]["head_tied"] is truth["head_tied"]
    codes = [f["code"] for f in report["findings"]]
    assert not {"output-untied-in-gguf", "output-tied-in-gguf"} & set(codes), codes
    if gguf == "untied":
        # Module rows: the stored head is its own row, owned by it, counted once.
        counts = json.loads(
            invoke("count-params", str(built[gguf]), "--depth", "1", "--json").stdout
        )
        output = reference_tensors(built[gguf])["output.weight"]
        rows = [row for row in counts["modules"] if row["name"] == "output"]
        assert [(r["parameters"], r["owned"]) for r in rows] == [(int(output.n_elements),) * 2]


def test_a_reference_without_an_lm_head_is_not_compared(
    built: dict[str, Path], tmp_path: Path
) -> None:
    """A base model (no LM head) says nothing about how a head should be tied."""
    import torch
    import transformers

    config = transformers.AutoConfig.from_pretrained(built["hf-llama-untied"])
    config.architectures = ["LlamaModel"]
    torch.manual_seed(0)
    transformers.LlamaModel(config).save_pretrained(tmp_path / "base-model")
    assert (
        transformers.LlamaModel.from_pretrained(tmp_path / "base-model").get_output_embeddings()
        is None
    )
    report = report_of(str(built["untied"]), "--hf", str(tmp_path / "base-model"))
    assert report["checkpoint"]["gguf"]["reference"]["head_tied"] is None
    assert [f["code"] for f in report["findings"]] == ["gguf-output-quantized-differently"]


def test_reference_named_in_metadata(built: dict[str, Path], tmp_path: Path) -> None:
    named = gguf_models.convert(
        built["hf-gpt2"],
        tmp_path / "named.gguf",
        copy_tied_output=True,
        metadata={"general.source.repo_url": "https://huggingface.co/openai-community/gpt2"},
    )
    # Offline, the Hub id resolves to gpt2tie's built-in GPT-2 config (tied).
    report = report_of(str(named), "--offline")
    assert [f["code"] for f in report["findings"]] == ["output-untied-in-gguf"]
    reference = report["checkpoint"]["gguf"]["reference"]
    assert reference["found_by"] == "general.source.repo_url"
    assert reference["spec"] == "openai-community/gpt2"
    # A path written into a file is not followed, even when it exists.
    path_named = gguf_models.convert(
        built["hf-llama-untied"],
        tmp_path / "path.gguf",
        drop=("output.weight",),
        metadata={"general.source.repo_url": str(built["hf-llama-untied"])},
    )
    assert report_of(str(path_named))["findings"] == []
    unreachable = gguf_models.convert(
        built["hf-llama-tied"],
        tmp_path / "unreachable.gguf",
        metadata={"general.base_model.0.repo_url": "https://huggingface.co/nobody/nothing"},
    )
    report = report_of(str(unreachable), "--offline")
    (finding,) = report["findings"]
    assert finding["code"] == "gguf-reference-unavailable" and finding["severity"] == "info"
    assert "nobody/nothing" in finding["message"]
    assert report["checkpoint"]["gguf"]["reference"] is None


@pytest.mark.parametrize(
    "metadata, expected",
    [
        # One base model: every key that names a Hub id, in order, a URL's slash dropped.
        (
            {
                "general.source.repo_url": "https://huggingface.co/org/source/",
                "general.base_model.count": 1,
                "general.base_model.0.repo_url": "https://huggingface.co/org/base",
            },
            [
                ("org/source", "general.source.repo_url"),
                ("org/base", "general.base_model.0.repo_url"),
            ],
        ),
        # A merge of two base models: no single base to compare; the source still counts.
        (
            {
                "general.source.huggingface.repository": "org/merged",
                "general.base_model.count": 2,
                "general.base_model.0.repo_url": "https://huggingface.co/org/one",
            },
            [("org/merged", "general.source.huggingface.repository")],
        ),
    ],
    ids=["one-base", "merge"],
)
def test_reference_candidates_follow_the_metadata(
    built: dict[str, Path], tmp_path: Path, metadata: dict[str, str | int], expected: list[Any]
) -> None:
    from gpt2tie.formats.gguf import read_gguf_checkpoint
    from gpt2tie.inspection.gguf_report import reference_candidates

    path = gguf_models.convert(built["hf-llama-tied"], tmp_path / "m.gguf", metadata=metadata)
    reader = gguf.GGUFReader(path)  # the reference reader agrees on what the file says
    count = reader.get_field("general.base_model.count")
    assert int(count.parts[-1][0]) == metadata["general.base_model.count"]
    checkpoint = read_gguf_checkpoint(LocalFiles(tmp_path), ("m.gguf",))
    assert reference_candidates(checkpoint) == expected


def test_an_explicit_reference_that_cannot_be_read_is_an_error(built: dict[str, Path]) -> None:
    result = invoke("inspect", str(built["tied"]), "--hf", "nobody/nothing", "--offline")
    assert result.exit_code == 2
    assert result.output.startswith("Error: --hf nobody/nothing:")


def test_check_expect_tied_output(built: dict[str, Path]) -> None:
    assert invoke("check", str(built["tied"]), "--expect-tied", "output").exit_code == 0
    failed = invoke("check", str(built["untied"]), "--expect-tied", "output")
    assert failed.exit_code == 1
    assert "output.weight is untied" in failed.stdout


# --- split files, folders, choosing a file ----------------------------------------------------


def test_split_set_reads_as_one_model(built: dict[str, Path], tmp_path: Path) -> None:
    parts = sorted(built["split"].glob("*.gguf"))
    assert len(parts) >= 3
    whole = report_of(str(built["tied"]))
    for spec in (str(built["split"]), str(parts[1])):
        report = report_of(spec)
        assert report["parameters"] == whole["parameters"]
        assert report["heads"] == whole["heads"]
        assert report["checkpoint"]["files"] == [p.name for p in parts]
        assert report["checkpoint"]["gguf"]["split_count"] == len(parts)
    partial = tmp_path / "partial"
    partial.mkdir()
    for part in parts[:-1]:
        shutil.copy(part, partial / part.name)
    result = invoke("inspect", str(partial))
    assert result.exit_code == 2
    assert "parts are missing" in result.output and parts[-1].name in result.output


def test_folder_of_several_models_lists_them(built: dict[str, Path], tmp_path: Path) -> None:
    folder = built["tied"].parent
    result = invoke("inspect", str(folder))
    assert result.exit_code == 2
    assert result.output.count("\n") == 1
    for name, quant in (("tied-Q8_0.gguf", "Q8_0"), ("untied-Q4_K_M.gguf", "Q4_K_M")):
        assert f"{name} ({quant}," in result.output
    chosen = report_of(str(folder), "--gguf-file", "untied-Q4_K_M.gguf")
    assert chosen["checkpoint"]["files"] == ["untied-Q4_K_M.gguf"]
    missing = invoke("inspect", str(folder), "--gguf-file", "nope.gguf")
    assert missing.exit_code == 2 and "has no GGUF file 'nope.gguf'" in missing.output


def test_explain_and_load_refuse_gguf(built: dict[str, Path]) -> None:
    explained = invoke("explain", str(built["tied"]))
    assert explained.exit_code == 2 and "for a GGUF file run" in explained.output
    loaded = invoke("inspect", str(built["tied"]), "--load")
    assert loaded.exit_code == 2 and "GGUF files are not for" in loaded.output


def test_untie_refuses_gguf(built: dict[str, Path], tmp_path: Path) -> None:
    result = invoke("untie", str(built["tied"]), "--out", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert "not GGUF files" in result.output
    assert not (tmp_path / "out").exists()


def test_plan_refuses_gguf(built: dict[str, Path]) -> None:
    """A plan shards a Hugging Face model's parameters: refused after locating, before any
    settings file is read or any model built."""
    result = invoke("plan", str(built["tied"]), "--fsdp", "full_shard auto_wrap")
    assert result.exit_code == 2 and "plan: Hugging Face checkpoints only" in result.output


def test_gguf_path_imports_neither_torch_nor_transformers(built: dict[str, Path]) -> None:
    code = (
        "import sys\n"
        "from gpt2tie.cli import main\n"
        "try:\n"
        f"    main(['inspect', {str(built['tied'])!r}, '--json'])\n"
        "except SystemExit as exc:\n"
        "    assert not exc.code, exc.code\n"
        "loaded = [m for m in ('torch', 'transformers', 'gguf', 'numpy') if m in sys.modules]\n"
        "print('LOADED', loaded, file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "LOADED []" in done.stderr
    assert json.loads(done.stdout)["heads"][0]["tied"] is True


# --- the Hub and the HF cache -----------------------------------------------------------------


def hub_report(tmp_path: Path, *args: str) -> Any:
    return runner.invoke(
        app, [*args, "--cache-dir", str(tmp_path / "hf-cache"), "--json"], env={"COLUMNS": "100"}
    )


def range_requests(hub: FakeHub, name: str) -> int:
    return sum(1 for line in hub.requests if line.startswith("GET") and line.endswith(name))


def test_hub_reads_the_header_by_growing_range_requests(
    hub: FakeHub, built: dict[str, Path], tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    name = "big-vocab-Q8_0.gguf"
    # ~1.3 MB of vocabulary: the header outgrows the first chunk several times over.
    gguf_models.convert(built["hf-llama-tied"], repo / name, token_count=60_000)
    gguf_models.convert(built["hf-llama-untied"], repo / "other-Q4_0.gguf", matrix_type=Q.Q4_0)
    sha = hub.add_repo("org/tiny-GGUF", repo)
    header = read_gguf_header(LocalFiles(repo), name)
    size = (repo / name).stat().st_size

    result = hub_report(tmp_path, "inspect", "org/tiny-GGUF", "--gguf-file", name)
    assert result.exit_code == 0, result.output
    remote = json.loads(result.stdout)
    local = report_of(str(repo / name))
    for key in ("parameters", "alias_groups", "heads", "findings"):
        assert remote[key] == local[key], key
    assert remote["source"]["kind"] == "hub" and remote["source"]["revision"] == sha
    sent = hub.sent("org/tiny-GGUF", name)
    requests = range_requests(hub, name)
    # Doubling chunks: a handful of requests, and never much past the header's end.
    assert header.data_start > 1_000_000
    assert header.data_start <= sent <= 2 * header.data_start
    assert sent < size
    assert 3 <= requests <= 6
    assert hub.sent("org/tiny-GGUF", "other-Q4_0.gguf") == 0

    # The header is kept: a second run reads no byte of the file again.
    again = hub_report(tmp_path, "inspect", "org/tiny-GGUF", "--gguf-file", name)
    assert again.exit_code == 0, again.output
    assert hub.sent("org/tiny-GGUF", name) == sent
    assert range_requests(hub, name) == requests


def test_hub_repo_of_several_gguf_files_is_listed(
    hub: FakeHub, built: dict[str, Path], tmp_path: Path
) -> None:
    hub.add_repo("org/many-GGUF", built["tied"].parent)
    result = hub_report(tmp_path, "inspect", "org/many-GGUF")
    assert result.exit_code == 2
    assert "holds 5 GGUF models, name one with --gguf-file" in result.output
    assert "untied-Q4_K_M.gguf (Q4_K_M)" in result.output
    assert not [line for line in hub.requests if "/resolve/" in line]


def test_gguf_in_the_hf_cache_works_offline(built: dict[str, Path], tmp_path: Path) -> None:
    sha = "ab" * 20
    repo = tmp_path / "hf-cache" / "models--org--cached-GGUF"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(sha)
    snapshot = repo / "snapshots" / sha
    snapshot.mkdir(parents=True)
    shutil.copy(built["tied"], snapshot / built["tied"].name)
    result = hub_report(tmp_path, "inspect", "org/cached-GGUF", "--offline")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["source"]["kind"] == "cache" and report["source"]["revision"] == sha
    assert report["parameters"] == report_of(str(built["tied"]))["parameters"]


def test_70b_shaped_header_without_torch_in_bounded_memory(tmp_path: Path) -> None:
    """The benchmark's 70B file (sparse): right tie and counts, no torch, ≤ 200 MB peak RSS."""
    sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
    try:
        from gguf_header import BLOCKS, FFN, HIDDEN, KV, VOCAB, write_70b_header
    finally:
        sys.path.pop(0)
    path = tmp_path / "70b.gguf"
    write_70b_header(path)
    per_block = 2 * HIDDEN + 2 * HIDDEN * HIDDEN + 2 * KV * HIDDEN + 3 * FFN * HIDDEN
    expected = 2 * VOCAB * HIDDEN + HIDDEN + BLOCKS * per_block
    code = (
        "import re, sys\n"
        "from gpt2tie.cli import main\n"
        "try:\n"
        f"    main(['count-params', {str(path)!r}, '--json'])\n"
        "except SystemExit as exc:\n"
        "    assert not exc.code, exc.code\n"
        # VmHWM starts at exec; ru_maxrss would include the pytest process it was forked from.
        "status = open('/proc/self/status').read()\n"
        "peak = int(re.search(r'VmHWM:\\s+(\\d+) kB', status)[1]) // 1024\n"
        "print('PEAK', peak, 'torch' in sys.modules, file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    counts = json.loads(done.stdout)
    assert counts["parameters"]["unique"] == expected
    assert counts["parameters"]["duplicated"] == 0  # output.weight is stored: untied
    _, peak_mb, torch_loaded = done.stderr.split()[-3:]
    assert torch_loaded == "False"
    assert int(peak_mb) <= 200


def test_a_tensor_name_without_a_dot_is_its_own_module_row(tmp_path: Path) -> None:
    import numpy as np

    path = tmp_path / "dotless.gguf"
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_block_count(1)
    writer.add_tensor("token_embd.weight", np.zeros((8, 4), dtype=np.float32))
    writer.add_tensor("blk.0.attn_norm.weight", np.zeros(4, dtype=np.float32))
    writer.add_tensor("output_norm", np.zeros(16, dtype=np.float32))  # no dot
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    total = sum(int(t.n_elements) for t in gguf.GGUFReader(str(path)).tensors)  # the reference
    result = invoke("count-params", str(path), "--json")
    assert result.exit_code == 0, result.output
    counts = json.loads(result.stdout)
    top = {row["name"]: row["owned"] for row in counts["modules"] if row["depth"] == 1}
    assert top["output_norm"] == 16
    assert sum(top.values()) == counts["parameters"]["unique"] == total


def test_gguf_embedding_counts_match_the_models_embeddings(built: dict[str, Path]) -> None:
    from transformers import GPT2LMHeadModel

    model = GPT2LMHeadModel.from_pretrained(built["hf-gpt2"])
    embeddings = {
        id(m.weight): m.weight.numel()
        for m in model.modules()
        if isinstance(m, torch.nn.Embedding)  # wte and wpe: the truth, off the real instance
    }
    assert len(embeddings) == 2  # GPT-2's position_embd is the one that shows the split
    # The GGUF copy stores the tied head again (output.weight), as llama.cpp's converter does.
    counts = report_of(str(built["gpt2-copy"]))["parameters"]
    head = model.lm_head.weight.numel()
    assert counts["embedding"] == sum(embeddings.values())
    assert counts["non_embedding"] == counts["unique"] - counts["embedding"]
    assert counts["unique"] == sum(p.numel() for p in model.parameters()) + head


def test_an_encoder_gguf_gets_no_lm_head(tmp_path: Path) -> None:
    import numpy as np
    from transformers import BertConfig, BertModel

    config = BertConfig(
        vocab_size=32, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=16,
    )  # fmt: skip
    model = BertModel(config, add_pooling_layer=False)
    assert model.get_output_embeddings() is None  # the truth: an encoder, no LM head
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.BERT, config.num_hidden_layers)
    path = tmp_path / "bert-F32.gguf"
    writer = gguf.GGUFWriter(path, "bert")
    writer.add_block_count(config.num_hidden_layers)
    stored = 0
    for name, parameter in model.named_parameters():
        gguf_name = names.get_name(name, try_suffixes=(".weight", ".bias"))
        assert gguf_name is not None, name
        writer.add_tensor(gguf_name, parameter.detach().numpy().astype(np.float32))
        stored += parameter.numel()
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    report = report_of(str(path))
    assert report["heads"] == [] and report["alias_groups"] == []
    assert report["parameters"]["unique"] == report["parameters"]["with_duplicates"] == stored
    assert not [f for f in report["findings"] if f["code"].startswith("output-")]


def _write_gguf(path: Path, arch: str, tensors: dict[str, Any], **keys: int) -> Path:
    """A GGUF written by gguf's own writer: `tensors` by GGUF name, `keys` as uint32 values
    of `{arch}.KEY` (or `general.file_type`)."""
    writer = gguf.GGUFWriter(path, arch)
    writer.add_block_count(1)
    for key, value in keys.items():
        writer.add_uint32(key if key.startswith("general.") else f"{arch}.{key}", value)
    for name, array in tensors.items():
        writer.add_tensor(name, array)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.mark.parametrize("with_output", [True, False], ids=["output-stored", "no-output"])
def test_an_always_tied_architecture_ignores_a_stored_head(
    tmp_path: Path, with_output: bool
) -> None:
    """Gemma in llama.cpp has no `output` tensor (gguf's own table says so): a stored
    output.weight is never used, and the head is token_embd.weight."""
    import numpy as np

    assert gguf.MODEL_TENSOR.OUTPUT not in gguf.MODEL_TENSORS[gguf.MODEL_ARCH.GEMMA]
    tensors = {"token_embd.weight": np.ones((16, 8), dtype=np.float32)}
    if with_output:
        tensors["output.weight"] = np.ones((16, 8), dtype=np.float32)
    report = report_of(str(_write_gguf(tmp_path / "gemma.gguf", "gemma", tensors)))
    ignored = [f for f in report["findings"] if f["code"] == "gguf-output-ignored"]
    if with_output:
        (finding,) = ignored
        assert (finding["severity"], finding["names"]) == ("warning", ["output.weight"])
        assert (
            "llama.cpp's gemma always computes the logits with token_embd.weight"
            in (finding["message"])
        )
    else:
        assert ignored == []


def test_header_facts_against_the_reference_reader(tmp_path: Path) -> None:
    """The vocabulary size, an unknown file type (shown as its number) and a file without
    tensors (one part), read back by gguf.GGUFReader."""
    path = _write_gguf(
        tmp_path / "facts.gguf", "llama", {}, vocab_size=77, **{"general.file_type": 999}
    )
    reader = gguf.GGUFReader(path)
    assert len(reader.tensors) == 0
    section = report_of(str(path))["checkpoint"]["gguf"]
    assert section["vocab_size"] == reader.fields["llama.vocab_size"].contents() == 77
    assert section["file_type"] == str(reader.fields["general.file_type"].contents()) == "999"
    assert section["split_count"] == 1


@pytest.mark.parametrize(
    "metadata",
    [
        {"general.source.huggingface.repository": "o" * 300},
        {"general.source.repo_url": "https://huggingface.co/org/" + "n" * 5000},
        {"general.source.repo_url": "x" * 65536},
        {"general.source.huggingface.repository": "org/" + "n" * 255},
    ],
)
def test_overlong_names_in_the_header_are_no_reference(
    built: dict[str, Path], tmp_path: Path, metadata: dict[str, str]
) -> None:
    """Names longer than a Hub id may be (96 characters a part) are not looked up: no path
    probe of a name the file system refuses (exit 3 before), no Hub query."""
    named = gguf_models.convert(built["hf-gpt2"], tmp_path / "long.gguf", metadata=metadata)
    report = report_of(str(named), "--offline")
    assert report["checkpoint"]["gguf"]["reference"] is None
    assert [f["code"] for f in report["findings"]] == []


def test_a_vocab_only_file_says_neither_is_stored(tmp_path: Path) -> None:
    """A GGUF with a vocabulary and no tensors (llama.cpp's vocab-only files): the output does
    not "use token_embd", which is not stored either (gguf's own reader is the truth)."""
    import gguf

    path = tmp_path / "vocab.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_vocab_size(8)
    writer.add_token_list([b"a", b"b"])
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    assert len(gguf.GGUFReader(str(path)).tensors) == 0
    shown = runner.invoke(app, ["inspect", str(path), "--no-cache"], env={"COLUMNS": "120"})
    assert shown.exit_code == 0, shown.output
    (row,) = [line for line in shown.stdout.splitlines() if "output type" in line]
    assert "not stored" in row and "token_embd" not in row
    report = report_of(str(path))
    assert report["heads"] == [] and report["parameters"]["unique"] == 0
