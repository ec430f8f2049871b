"""What `--help` says for each command: a one-line summary, what it does, and examples.

Kept as data (not docstrings) so that each paragraph is one line that the terminal wraps, and
every example is indented alike, at 80 columns as at 200.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CommandHelp:
    summary: str  # the line in `gpt2tie --help`: at most 56 characters, so it fits 80 columns
    details: tuple[str, ...]
    examples: tuple[tuple[str, str], ...]  # (command line, what it shows)

    def text(self) -> str:
        lines = [self.summary, *self.details, "[bold]Examples[/bold]"]
        for command, comment in self.examples:
            lines.append(
                f"  [cyan]{command}[/cyan]" + (f"\n  [dim]# {comment}[/dim]" if comment else "")
            )
        return "\n\n".join(lines)


COMMANDS: dict[str, CommandHelp] = {
    "inspect": CommandHelp(
        "Tied weights, heads and counts; what loading will do.",
        (
            "Finds every group of parameter names that are one tensor, the output heads and "
            "whether each is tied, parameter counts with and without de-duplication, and what "
            "from_pretrained will do with the files.",
            "Only safetensors headers are read, plus the two tensors of a declared tie whose "
            "both sides are stored (their values decide whether transformers ties them).",
            "GGUF files (llama.cpp) are read header-only too: no output.weight means the "
            "output is tied to token_embd.weight.",
        ),
        (
            ("gpt2tie inspect gpt2", ""),
            ("gpt2tie inspect ./checkpoint --json | jq '.alias_groups[].names'", ""),
            ("gpt2tie inspect ./checkpoint --fail-on warning", "CI gate: exit 1 on warnings"),
            ("gpt2tie inspect ./checkpoint --load", "compare with a real from_pretrained"),
            ("gpt2tie inspect model-Q4_K_M.gguf --hf org/model", "did conversion keep the tie?"),
            ("gpt2tie inspect org/Model-GGUF --gguf-file model-Q8_0.gguf", ""),
        ),
    ),
    "count-params": CommandHelp(
        "Parameters: unique and per name, per module, per dtype.",
        (
            "Counts the model as from_pretrained will build it from these files: each tensor "
            "once (parameters()) and each name once (named_parameters(remove_duplicate=False)), "
            "per module and per stored dtype, with the same findings as inspect.",
        ),
        (
            ("gpt2tie count-params gpt2", ""),
            ("gpt2tie count-params ./checkpoint --depth 2", ""),
            ("gpt2tie count-params ./checkpoint --json | jq '.parameters.unique'", ""),
            ("gpt2tie count-params gpt2 --memory --context 8192", "will it fit? (bytes)"),
        ),
    ),
    "check": CommandHelp(
        "Gate CI on expected ties, parameter bounds and findings.",
        (
            "Given a parallel run's settings (as plan takes them), also checks that the run "
            "keeps every tie. Exit 0 if every check passes, 1 if one fails, 2 on bad input.",
        ),
        (
            ("gpt2tie check ./checkpoint --expect-tied lm_head", ""),
            ("gpt2tie check ./checkpoint --expect-untied lm_head --max-params 1.5B", ""),
            ("gpt2tie check ./ckpt --fail-on warning --json | jq '.checks[]'", ""),
            ("gpt2tie check ./ckpt --accelerate-config fsdp.yaml", "and the run's plan"),
        ),
    ),
    "diff": CommandHelp(
        "What changed from model A to model B, classified for CI.",
        (
            "Compares ties, heads, parameter counts (also per stored dtype), stored tensors "
            "(added, removed, reshaped, re-typed), config fields that matter, what loading "
            "will do, and findings. A may be a saved `inspect --json` report. Header-only "
            "unless --compare-values.",
            "Exit 0 when nothing differs at or above --fail-on (default: any difference), "
            "1 otherwise, 2 on bad input.",
        ),
        (
            ("gpt2tie diff ./base ./finetune", "did the fine-tune break the tie?"),
            ("gpt2tie diff model-structure.json ./finetune --allow vocab-resized", ""),
            ("gpt2tie diff ./base ./finetune --format github", "annotations in Actions"),
            ("gpt2tie diff ./a ./b --compare-values", "also compare stored values"),
        ),
    ),
    "explain": CommandHelp(
        "What a tie means for training, saving and counting.",
        (
            "For a parameter or module of MODEL (default: every tied head): what training, "
            "freezing, optimizers, weight decay, saving and counting do with the tie, and the "
            "ways forward.",
        ),
        (
            ("gpt2tie explain gpt2 lm_head", "fine-tune the head: does wte train too?"),
            ("gpt2tie explain ./checkpoint --json", ""),
        ),
    ),
    "untie": CommandHelp(
        "Copy MODEL with each tied head given its own weight.",
        (
            "Writes tie_word_embeddings: false and a copy of the shared weight for each head, "
            "so head and embedding can be trained or frozen separately.",
            "The source is never modified; --out is written in a temporary folder and renamed "
            "into place.",
        ),
        (
            ("gpt2tie untie ./gpt2 --out ./gpt2-untied", ""),
            ("gpt2tie inspect ./gpt2-untied", "untied, with an untied-identical finding"),
        ),
    ),
    "retie": CommandHelp(
        "Copy MODEL with each untied head tied to its embedding.",
        (
            "Writes tie_word_embeddings: true and drops the head's stored copy. Refuses when "
            "their values differ, unless --prefer says which to keep.",
        ),
        (
            ("gpt2tie retie ./gpt2-untied --out ./gpt2-tied", ""),
            ("gpt2tie retie ./finetuned --out ./tied --prefer head", ""),
        ),
    ),
    "plan": CommandHelp(
        "Will this parallel run keep the ties? Before it starts.",
        (
            "Reads the run's settings as its framework does (an accelerate config YAML; the "
            "Trainer's --fsdp and --fsdp-config; transformers' own DistributedConfig: "
            "--distributed-config, --tp-size, --pp-size; or torch.distributed.pipelining's "
            "--pipeline-split), builds the model on the meta device "
            "under a fake process group of the run's world size and parallelises it with the "
            "framework's own code (accelerate's fsdp2_prepare_model, transformers' "
            "maybe_distribute_model, torch's fully_shard, DTensor and pipeline). For every tie "
            "it reports "
            "each name's FSDP unit, tensor-parallel style and placement, and pipeline stages, "
            "and whether the run keeps it. No weights are loaded, no GPU is needed.",
            "A tie the run splits is an error (its first forward raises, or the copies train "
            "apart), with a fix in the settings' own terms, checked by simulating the run with "
            "it; a tie copied across pipeline stages is a warning. Exit 0 when no finding "
            "reaches --fail-on (default: error), 1 otherwise, 2 on bad input. check takes the "
            "same settings to gate CI on the plan.",
        ),
        (
            ("gpt2tie plan ./my-model --accelerate-config fsdp.yaml", ""),
            (
                "gpt2tie plan ./my-model --fsdp 'full_shard auto_wrap' --fsdp-config fsdp.json",
                "the Trainer's settings",
            ),
            ("gpt2tie plan ./my-model --tp-size 4", "transformers' tensor parallelism"),
            ("gpt2tie plan org/model --distributed-config dist.json --json", ""),
            ("gpt2tie plan ./my-model --pipeline-split 16,32", "three pipeline stages"),
            ("gpt2tie check ./my-model --accelerate-config fsdp.yaml", "gate CI on the plan"),
        ),
    ),
    "scan": CommandHelp(
        "Ties and true counts of many models, one JSON line each.",
        (
            "Reads every model it is given as inspect reads one (header-only on the Hub, "
            "several at once): repo ids (org/name or org/name@revision), the model folders and "
            "GGUF files under a local folder, a file of ids (--ids), a Hub author (--author), "
            "search (--search) or collection (--collection). Each model is one JSON line on "
            "stdout or in --output: the commit read, the declared tie and where it is "
            "declared, whether each head is tied and stored, stored vs unique parameters, the "
            "count the Hub shows, the findings, and the whole inspect report; or the one-line "
            "error of that model, and the scan goes on.",
            "Rerun with the same --output to continue after Ctrl-C or a kill: no model twice, "
            "none lost. --shard K/N takes one piece of the list (a job array runs N pieces; "
            "their rows together are one run's). A summary goes to stderr. Exit 0, or 1 when a "
            "finding reaches --fail-on (default: never), 2 on bad input, 3 when a row carries "
            "an internal error.",
        ),
        (
            ("gpt2tie scan --author Qwen --output qwen.jsonl", "every model of an organisation"),
            ("gpt2tie scan ./checkpoints --fail-on error", "every model folder below"),
            ("gpt2tie scan --ids repos.txt --shard 3/8 --output part3.jsonl", "a job array"),
        ),
    ),
    "list-builtin": CommandHelp(
        "The configs shipped with gpt2tie (they answer offline).",
        ("Each answers offline, structurally: no checkpoint files are read.",),
        (
            ("gpt2tie list-builtin", ""),
            ("gpt2tie inspect meta-llama/Llama-3.2-1B --offline", ""),
        ),
    ),
}
