"""`TieGuardCallback`: the tie guard as a `transformers.TrainerCallback`.

This module imports transformers, so the package only imports it when the callback is asked for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transformers import TrainerCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from gpt2tie.training.guard import OnBroken, TieGuard


class TieGuardCallback(TrainerCallback):
    """Checks the model's ties at train begin, after every `every`-th optimizer step, and on
    each save, where the checkpoint just written is inspected (headers, and the tensors a tie
    decision needs) and a checkpoint that would reload with other ties is reported at once.

    `on_broken="raise"` stops training with `TieBrokenError`; `"warn"` warns (`TieWarning`) and
    goes on. What was reported is kept in `findings`.
    """

    def __init__(
        self, *, every: int = 1, on_broken: OnBroken = "raise", check_saves: bool = True
    ) -> None:
        self.every = every
        self.on_broken = on_broken
        self.check_saves = check_saves
        self.guard: TieGuard | None = None

    @property
    def findings(self) -> list[Any]:
        return list(self.guard.findings) if self.guard is not None else []

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.guard = TieGuard(
            kwargs["model"],
            every=self.every,
            on_broken=self.on_broken,
            optimizer=kwargs.get("optimizer"),
        )

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.guard is not None and state.global_step % self.every == 0:
            self.guard.check(state.global_step)

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.guard is None:
            return
        self.guard.check(state.global_step)
        folder = Path(args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}"
        # One process writes the checkpoint; the others would read a folder being written.
        if self.check_saves and state.is_world_process_zero and folder.is_dir():
            self.guard.check_saved(folder)
