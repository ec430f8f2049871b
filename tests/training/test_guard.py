"""The training-time tie guard: a real 2-step `Trainer.train()` on CPU with a tie broken by user
code, a config flag flipped under a tied model, and a clean run; a plain PyTorch loop. The truth
is the real instance (object identity of its parameters, the optimizer's own parameter list)
and a real `from_pretrained` of the checkpoint the Trainer wrote."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest
from distributed_worker import tiny_gpt2

import gpt2tie
from gpt2tie.base.errors import InputError


def tied(model: Any) -> bool:
    return model.lm_head.weight is model.transformer.wte.weight


def untie_head(model: Any) -> None:
    """What user code does that breaks the tie: a new Parameter on one side."""
    import torch

    model.lm_head.weight = torch.nn.Parameter(model.lm_head.weight.detach().clone())


def train_two_steps(
    output: Path, change: Any, guard: Any, model: Any = None
) -> tuple[Any, list[str]]:
    """A real Trainer run of 2 optimizer steps that saves once, at the end; `change(model)`
    runs after step 1, before the guard's check of that step. Returns the model (a tiny
    GPT-2 unless one is given) and the TieWarnings raised."""
    import torch
    from transformers import Trainer, TrainerCallback, TrainingArguments

    class Examples(torch.utils.data.Dataset[dict[str, Any]]):
        def __len__(self) -> int:
            return 8

        def __getitem__(self, index: int) -> dict[str, Any]:
            ids = torch.tensor([1, 2, 3, 4, 5, 6, 7, 8])
            return {"input_ids": ids, "labels": ids}

    class UserCode(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.global_step == 1 and change is not None:
                change(kwargs["model"])

    model = tiny_gpt2() if model is None else model
    arguments = TrainingArguments(
        output_dir=str(output),
        max_steps=2,
        per_device_train_batch_size=4,
        save_steps=2,
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
    )
    trainer = Trainer(
        model=model, args=arguments, train_dataset=Examples(), callbacks=[UserCode(), guard]
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.train()
    return model, [str(w.message) for w in caught if w.category is gpt2tie.TieWarning]


def reloaded(folder: Path) -> Any:
    from transformers import GPT2LMHeadModel

    return GPT2LMHeadModel.from_pretrained(folder)


def test_trainer_stops_where_user_code_breaks_the_tie(tmp_path: Path) -> None:
    broken: list[Any] = []

    def change(model: Any) -> None:
        untie_head(model)
        broken.append(tied(model))

    with pytest.raises(gpt2tie.TieBrokenError) as raised:
        train_two_steps(tmp_path, change, gpt2tie.TieGuardCallback())
    assert broken == [False]  # the truth: after the change the two names are two objects
    [finding] = raised.value.findings
    assert finding.code == "tie-broken-during-training"
    assert finding.names == ("transformer.wte.weight", "lm_head.weight")
    assert "(seen at step 1)" in finding.message
    assert "lm_head.weight got a new Parameter" in finding.message
    assert not (tmp_path / "checkpoint-2").exists()  # stopped before the save


def test_trainer_warns_and_reports_the_checkpoint_that_reloads_untied(tmp_path: Path) -> None:
    guard = gpt2tie.TieGuardCallback(on_broken="warn")
    model, warned = train_two_steps(tmp_path, untie_head, guard)
    assert warned == [f"{f.code}: {f.message}" for f in guard.findings]
    folder = tmp_path / "checkpoint-2"
    in_memory, on_reload = tied(model), tied(reloaded(folder))
    assert not in_memory
    during = [f for f in guard.findings if f.code == "tie-broken-during-training"]
    assert len(during) == 1 and "(seen at step 1)" in during[0].message  # once, not per step
    # The optimizer Trainer built before the change does not hold the new head (the truth).
    optimizer_ids = {id(p) for g in guard.guard.optimizer.param_groups for p in g["params"]}
    assert id(model.lm_head.weight) not in optimizer_ids
    assert "the optimizer does not hold lm_head.weight" in during[0].message
    about_save = [f for f in guard.findings if f.message.startswith(str(folder))]
    assert about_save, "the saved checkpoint's reload problem is reported"
    # transformers 5 refuses the tie (values differ), 4 re-ties and discards the stored head:
    # a difference from memory is named exactly when the real reload differs from memory.
    differs = "checkpoint-reloads-differently" in {f.code for f in about_save}
    assert differs == (on_reload != in_memory)


def test_trainer_reports_a_flag_flipped_under_a_tied_model(tmp_path: Path) -> None:
    def flip(model: Any) -> None:
        model.config.tie_word_embeddings = False  # "untie" by the flag only

    guard = gpt2tie.TieGuardCallback(on_broken="warn")
    model, warned = train_two_steps(tmp_path, flip, guard)
    assert len(warned) == len(guard.findings) > 0
    folder = tmp_path / "checkpoint-2"
    assert tied(model) and not tied(reloaded(folder))  # the truth: reload differs from memory
    [differs] = [f for f in guard.findings if f.code == "checkpoint-reloads-differently"]
    assert set(differs.names) == {"lm_head.weight", "transformer.wte.weight"}
    assert "one tensor in memory" in differs.message and "untied" in differs.message
    assert "tie-broken-during-training" not in {f.code for f in guard.findings}


def test_trainer_clean_run_reports_nothing(tmp_path: Path) -> None:
    guard = gpt2tie.TieGuardCallback()
    model, warned = train_two_steps(tmp_path, None, guard)
    assert warned == []
    assert tied(model) and tied(reloaded(tmp_path / "checkpoint-2"))
    assert guard.findings == []
    assert guard.guard is not None
    assert guard.guard.watched == (("transformer.wte.weight", "lm_head.weight"),)


def test_plain_loop_checks_every_n_steps() -> None:
    import torch

    model = tiny_gpt2()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    guard = gpt2tie.TieGuard(model, every=2, on_broken="warn", optimizer=optimizer)
    seen: list[tuple[int, int]] = []
    for step in range(1, 5):
        optimizer.zero_grad()
        model(torch.tensor([[1, 2, 3]]), labels=torch.tensor([[1, 2, 3]])).loss.backward()
        optimizer.step()
        if step == 3:
            untie_head(model)
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)  # rebuilt: trains both
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            found = guard.step()
        seen.append((len(found), len(caught)))
    assert seen == [(0, 0), (0, 0), (0, 0), (1, 1)]  # checked on steps 2 and 4 only
    [finding] = guard.findings
    assert "(between step 2 and step 4)" in finding.message
    # The guard was given the first optimizer, which does not hold the new head.
    assert "the optimizer does not hold lm_head.weight" in finding.message
    guard.optimizer = optimizer
    assert not tied(model) and guard.check() == ()  # reported once


def test_optimizer_that_holds_the_new_parameter_is_not_blamed() -> None:
    import torch

    model = tiny_gpt2()
    guard = gpt2tie.TieGuard(model, on_broken="warn")
    untie_head(model)
    guard.optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    held = {id(p) for g in guard.optimizer.param_groups for p in g["params"]}
    assert id(model.lm_head.weight) in held  # the truth: this optimizer trains the new head
    with pytest.warns(gpt2tie.TieWarning):
        [finding] = guard.check()
    assert "does not hold" not in finding.message


def test_context_manager_checks_on_exit() -> None:
    model = tiny_gpt2()
    with (
        pytest.raises(gpt2tie.TieBrokenError, match=r"lm_head\.weight got a new Parameter"),
        gpt2tie.TieGuard(model),
    ):
        untie_head(model)
    with gpt2tie.TieGuard(model := tiny_gpt2()) as guard:
        model.lm_head.weight.data.mul_(2)  # in place: still one tensor
    assert guard.findings == [] and tied(model)


def test_a_replaced_module_is_named() -> None:
    import torch

    model = tiny_gpt2()
    guard = gpt2tie.TieGuard(model, on_broken="warn")
    model.lm_head = torch.nn.Linear(16, 64, bias=False)
    with pytest.warns(gpt2tie.TieWarning):
        [finding] = guard.check(7)
    assert finding.names == ("transformer.wte.weight", "lm_head.weight")
    assert "lm_head.weight got a new Parameter" in finding.message


def test_a_model_broken_before_training_is_reported_at_start() -> None:
    import torch
    from transformers import GPT2LMHeadModel

    with torch.device("meta"):
        model = GPT2LMHeadModel(tiny_gpt2().config)
    model.to_empty(device="cpu")
    assert not tied(model)  # the truth: to_empty() gave each name its own tensor
    with pytest.raises(gpt2tie.TieBrokenError) as raised:
        gpt2tie.TieGuard(model)
    assert [f.code for f in raised.value.findings] == ["declared-tie-not-aliased"]


@pytest.mark.parametrize(
    ("keywords", "words"),
    [
        ({"every": 0}, "every must be a whole number of steps, at least 1, not 0"),
        ({"every": 1.5}, "at least 1, not 1.5"),
        ({"on_broken": "ignore"}, "on_broken must be 'raise' or 'warn', not 'ignore'"),
    ],
)
def test_bad_arguments_are_one_clear_error(keywords: dict[str, Any], words: str) -> None:
    with pytest.raises(InputError, match=words.replace("(", r"\(").replace(".", r"\.")):
        gpt2tie.TieGuard(tiny_gpt2(), **keywords)


def test_importing_the_guard_imports_no_transformers() -> None:
    probe = (
        "import sys, gpt2tie; gpt2tie.TieGuard; gpt2tie.TieBrokenError; "
        "print('transformers' in sys.modules, 'torch' in sys.modules)"
    )
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert run.stdout.split() == ["False", "False"]


def _lora(model: Any) -> Any:
    from peft import LoraConfig, get_peft_model

    return get_peft_model(model, LoraConfig(r=2, target_modules=["c_attn"]))


@pytest.mark.parametrize("on_broken", ["raise", "warn"])
def test_a_checkpoint_the_guard_cannot_read_never_stops_training(
    tmp_path: Path, on_broken: str
) -> None:
    """A LoRA on a GPT-2 built from its config: the adapter names no base model, so the saved
    folder cannot be inspected. No tie changed: the run goes to its end in either mode."""
    guard = gpt2tie.TieGuardCallback(on_broken=on_broken)  # type: ignore[arg-type]
    model, warned = train_two_steps(tmp_path, None, guard, model=_lora(tiny_gpt2()))
    assert tied(model.base_model.model)  # the truth: the tie held throughout
    assert [f.code for f in guard.findings] == ["saved-checkpoint-unchecked"]
    assert "names no base model" in guard.findings[0].message
    assert any("saved-checkpoint-unchecked" in w for w in warned)
    assert (tmp_path / "checkpoint-2" / "adapter_config.json").is_file()


def test_an_uncached_base_while_offline_never_stops_training(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    base = tiny_gpt2()
    base.name_or_path = "nobody-gpt2tie/not-cached"  # what PEFT writes as the base
    guard = gpt2tie.TieGuardCallback(on_broken="raise")
    model, _ = train_two_steps(tmp_path, None, guard, model=_lora(base))
    adapter = (tmp_path / "checkpoint-2" / "adapter_config.json").read_text()
    assert "nobody-gpt2tie/not-cached" in adapter  # the truth: it names that base
    assert tied(model.base_model.model)
    assert [f.code for f in guard.findings] == ["saved-checkpoint-unchecked"]


def test_the_api_guard_in_warn_mode_never_raises_on_an_unreadable_folder(
    tmp_path: Path,
) -> None:
    model = tiny_gpt2()
    guard = gpt2tie.TieGuard(model, on_broken="warn")
    _lora(model).save_pretrained(tmp_path / "adapter")
    with pytest.warns(gpt2tie.TieWarning, match="could not check"):
        found = guard.check_saved(tmp_path / "adapter")
    assert [f.code for f in found] == ["saved-checkpoint-unchecked"]
    # A name that is no folder here is refused without a Hub lookup (nothing listens there).
    with pytest.warns(gpt2tie.TieWarning, match="no such folder"):
        guard.check_saved("openai-community/gpt2")
    strict = gpt2tie.TieGuard(tiny_gpt2(), on_broken="raise")
    with pytest.warns(gpt2tie.TieWarning):
        assert strict.check_saved(tmp_path / "missing")[0].severity == "warning"


@pytest.mark.parametrize("on_broken", ["raise", "warn"])
def test_modules_to_save_on_both_sides_of_a_tie_is_a_broken_tie(on_broken: str) -> None:
    """The recipe for added tokens: PEFT's modules_to_save on the head and the embedding,
    applied after the guard started. Every watched name is gone; each side now trains a copy
    of its own (the truth: the two trainable tensors are distinct objects)."""
    from peft import LoraConfig, get_peft_model

    base = tiny_gpt2()
    guard = gpt2tie.TieGuard(base, on_broken=on_broken)  # type: ignore[arg-type]
    peft_model = get_peft_model(
        base, LoraConfig(r=2, target_modules=["c_attn"], modules_to_save=["lm_head", "wte"])
    )
    guard.model = peft_model
    trainable = {
        name: p
        for name, p in peft_model.named_parameters()
        if p.requires_grad and ("lm_head" in name or "wte" in name)
    }
    assert len({id(p) for p in trainable.values()}) == 2, sorted(trainable)
    if on_broken == "raise":
        with pytest.raises(gpt2tie.TieBrokenError) as raised:
            guard.check(1)
        (finding,) = raised.value.findings
    else:
        with pytest.warns(gpt2tie.TieWarning):
            (finding,) = guard.check(1)
    assert finding.code == "tie-broken-during-training"
    assert set(finding.names) == {"lm_head.weight", "transformer.wte.weight"}


def test_a_wrapper_applied_after_the_start_keeps_the_tie() -> None:
    """Every name moved under a prefix (a LoRA elsewhere, torch.compile): still one tensor."""
    import torch

    base = tiny_gpt2()
    guard = gpt2tie.TieGuard(base, on_broken="raise")
    for wrapped in (_lora(base), torch.compile(base)):
        guard.model = wrapped
        assert guard.check(1) == ()


def test_a_guard_over_two_models_compares_the_saved_one(tmp_path: Path) -> None:
    """Distillation: a module holding a teacher (untied) and a student (tied). The student's
    checkpoint reloads as the student is: no false alarm from comparing with the teacher."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    teacher = GPT2LMHeadModel(
        GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=64, tie_word_embeddings=False)
    )
    student = tiny_gpt2()

    class Distillation(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.teacher, self.student = teacher, student

    guard = gpt2tie.TieGuard(Distillation(), on_broken="raise")
    student.save_pretrained(tmp_path / "student")
    assert guard.check_saved(tmp_path / "student") == ()
    reloaded_student = reloaded(tmp_path / "student")  # the truth: it reloads tied
    assert tied(reloaded_student)


@pytest.mark.parametrize("on_broken", ["raise", "warn"])
def test_a_distillation_run_is_never_stopped(tmp_path: Path, on_broken: str) -> None:
    """Two models in one module as a real Trainer run (the loss is the student's). The Trainer
    saves the wrapper's state dict without a config, which the guard cannot read; no tie
    changed, so the run ends normally in either mode. (Both untied: with a tie inside, the
    Trainer's own safetensors save of a plain module refuses the shared tensors.)"""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    def untied(width: int) -> Any:
        config = GPT2Config(
            n_layer=1, n_embd=width, n_head=2, vocab_size=64, tie_word_embeddings=False
        )
        return GPT2LMHeadModel(config)

    class Distillation(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.teacher, self.student = untied(32), untied(16)

        def forward(self, input_ids: Any, labels: Any) -> Any:
            with torch.no_grad():
                self.teacher(input_ids=input_ids)
            return self.student(input_ids=input_ids, labels=labels)

    guard = gpt2tie.TieGuardCallback(on_broken=on_broken)  # type: ignore[arg-type]
    model, _ = train_two_steps(tmp_path, None, guard, model=Distillation())
    assert not tied(model.student)
    assert (tmp_path / "checkpoint-2" / "model.safetensors").is_file()
    assert [f.code for f in guard.findings] == ["saved-checkpoint-unchecked"]


def test_a_parameter_of_many_names_is_guarded_within_bounds() -> None:
    """One Parameter under 20,000 names (construction was quadratic in them: 4,000 names
    took 15 s, 100,000 never finished); under the documented CPU bound in a child process."""
    from bounded_runs import limited

    code = (
        "import torch, gpt2tie\n"
        "shared = torch.nn.Parameter(torch.zeros(2, 2))\n"
        "layers = torch.nn.ModuleList(torch.nn.Linear(2, 2) for _ in range(20_000))\n"
        "for layer in layers: layer.weight = shared\n"
        "guard = gpt2tie.TieGuard(layers)\n"
        "print(len(guard.watched[0]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, preexec_fn=limited
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["20000"]
