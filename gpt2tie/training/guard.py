"""Watch a model's ties while it trains: every tie it holds when the guard starts stays one
tensor, and a saved checkpoint reloads with the ties the model in memory holds.

A check costs one walk over `named_parameters()` and a comparison of object identities: no
tensor is copied or read, so it fits after every optimizer step.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from gpt2tie.base.errors import Gpt2tieError, InputError
from gpt2tie.live.module_report import inspect_module, transformers_model, transformers_models
from gpt2tie.model.aliases import parameter_table
from gpt2tie.model.declared_ties import live_ties
from gpt2tie.model.transformers_version import described, refuses_differing_ties
from gpt2tie.results import Finding, InspectReport

if TYPE_CHECKING:
    import torch

OnBroken = Literal["raise", "warn"]
ON_BROKEN: tuple[OnBroken, ...] = ("raise", "warn")
# The findings that are a tie that broke (or will, on reload): only these stop a run, and only
# with on_broken="raise". Anything else the guard sees (a checkpoint it cannot read, a weight
# missing from a file) is warned and training goes on.
BROKEN_TIE_CODES = frozenset(
    {
        "tie-broken-during-training",
        "checkpoint-reloads-differently",
        "declared-tie-not-aliased",
        "tie-split-across-fsdp-units",
        "tie-split-by-device-map",
        "tie-refused-on-load",
        "tie-refused-values-differ",
        "tie-discards-stored-values",
        "tie-left-uninitialised",
        "adapter-merge-changes-tied-partner",
        "adapter-delta-applied-twice",
        "adapter-keys-dropped-on-load",
    }
)


class TieBrokenError(AssertionError):
    """A tie the guard watches broke, or a saved checkpoint would reload with other ties."""

    def __init__(self, findings: tuple[Finding, ...]) -> None:
        super().__init__("\n".join(f"{f.code}: {f.message}" for f in findings))
        self.findings = findings


class TieWarning(UserWarning):
    """What the guard reports when asked to warn instead of raising."""


class TieGuard:
    """Checks that `model`'s ties hold while it trains.

    Construction inspects the model once (an error there, such as a tie split across FSDP
    units or a device map, is reported at once) and remembers every group of names that are one
    Parameter. `check()` reports a group that has come apart since; `step()` does the same every
    `every` calls; `check_saved(folder)` inspects a saved checkpoint (headers, and the two
    tensors a tie decision needs) and reports ties it would reload without, or with, that the
    model in memory does not hold. Each problem is reported once: raised as `TieBrokenError`
    (`on_broken="raise"`) or warned as `TieWarning` (`"warn"`); all are kept in `findings`.
    With `optimizer`, a broken tie also says whether the new Parameter is trained at all.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        *,
        every: int = 1,
        on_broken: OnBroken = "raise",
        optimizer: Any = None,
    ) -> None:
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise InputError(f"every must be a whole number of steps, at least 1, not {every!r}")
        if on_broken not in ON_BROKEN:
            raise InputError(f"on_broken must be 'raise' or 'warn', not {on_broken!r}")
        self.model = model
        self.every = every
        self.on_broken = on_broken
        self.optimizer = optimizer
        self.findings: list[Finding] = []
        self._steps = 0
        self._last_whole: int | None = None
        self._reported: set[tuple[str, str]] = set()
        start = inspect_module(model)
        table = parameter_table(model)
        self._watched = [names for names in table.names_by_object.values() if len(names) > 1]
        self._start_ids = table.object_id_by_name()
        inner, prefix = transformers_model(model)
        declared = live_ties(inner)[0] if inner is not None else {}
        self._declared = {prefix + target: prefix + source for target, source in declared.items()}
        self._report(start.findings_at_or_above("error"))

    @property
    def watched(self) -> tuple[tuple[str, ...], ...]:
        """The groups of names that were one Parameter when the guard started."""
        return tuple(tuple(names) for names in self._watched)

    def step(self) -> tuple[Finding, ...]:
        """Count one optimizer step; check on every `every`-th."""
        self._steps += 1
        if self._steps % self.every:
            return ()
        return self.check(self._steps)

    def check(self, step: int | None = None) -> tuple[Finding, ...]:
        """Report the watched ties that are no longer one Parameter (new ones only)."""
        parameters = dict(self.model.named_parameters(remove_duplicate=False))
        broken = []
        for names in self._watched:
            if all(n not in parameters for n in names):
                # Every name moved (a wrapper applied after the start, PEFT's
                # modules_to_save): judged by the tensors that now stand for each name.
                moved = self._moved_apart(names, parameters, step)
                if moved is not None:
                    broken.append(moved)
            elif len({id(parameters[n]) if n in parameters else None for n in names}) > 1:
                broken.append(self._broken(names, parameters, step))
        if not broken:
            self._last_whole = step
        return self._report(tuple(broken))

    def check_saved(self, folder: str | Path) -> tuple[Finding, ...]:
        """Report how the checkpoint in `folder` would reload differently from the model.

        Only the local folder is read (a name that is no folder here is not looked up on the
        Hub). A checkpoint the guard cannot inspect is reported as a warning, never raised:
        the guard must not stop a healthy run.
        """
        from gpt2tie.answering.answer import run
        from gpt2tie.requests.request import AnalysisOptions, Request

        path = Path(folder)
        if not path.is_dir():
            return self._report((_unchecked(str(folder), "no such folder on this machine"),))
        try:
            saved = run(Request(str(path), what=AnalysisOptions(use_cache=False))).inspection
        except Gpt2tieError as exc:
            return self._report((_unchecked(str(folder), str(exc)),))
        findings = list(_reload_differences(self.model, saved, str(folder)))
        findings += [
            Finding(f.code, f.severity, f"{folder}: {f.message}", f.names)
            for f in saved.findings_at_or_above("error")
        ]
        return self._report(tuple(findings))

    def __enter__(self) -> TieGuard:
        return self

    def __exit__(self, kind: object, error: object, traceback: object) -> None:
        if error is None:
            self.check(self._steps or None)

    def _broken(
        self, names: list[str], parameters: dict[str, torch.nn.Parameter], step: int | None
    ) -> Finding:
        gone = [n for n in names if n not in parameters]
        replaced = [n for n in names if n in parameters and id(parameters[n]) != self._start_ids[n]]
        listed = " and ".join(names)
        if step is None:
            when = ""
        elif self._last_whole is None:
            when = f" (seen at step {step})"
        else:
            when = f" (between step {self._last_whole} and step {step})"
        if gone:
            what = f"{', '.join(gone)} no longer exist{'s' if len(gone) == 1 else ''}"
        else:
            what = (
                f"{', '.join(replaced or names[1:])} got a new Parameter (a replaced module, or "
                "`.weight = nn.Parameter(...)`), so they train apart"
            )
        untrained = self._not_in_optimizer([parameters[n] for n in replaced])
        if untrained:
            what += f"; the optimizer does not hold {', '.join(untrained)}, so it is not trained"
        return Finding(
            "tie-broken-during-training",
            "error",
            f"{listed} were one tensor when the guard started and are not now{when}: {what}. "
            f"{self._on_save(names)}If the tie should hold, call model.tie_weights() right "
            "after the change (and rebuild the optimizer); if you meant to untie, also set "
            "config.tie_word_embeddings = False",
            tuple(names),
        )

    def _on_save(self, names: list[str]) -> str:
        """What saving and reloading does with the pair, for a tie the class declares."""
        declared = [(t, s) for t, s in self._declared.items() if t in names and s in names]
        if not declared:
            return ""
        target, source = declared[0]
        if refuses_differing_ties():
            return (
                f"The next checkpoint stores both; once their values differ, {described()}'s "
                "from_pretrained refuses the tie and loads them untied. "
            )
        return (
            f"The next checkpoint stores both; {described()}'s from_pretrained ties them "
            f"again and silently discards the stored {target} in favour of {source}. "
        )

    def _not_in_optimizer(self, replaced: list[torch.nn.Parameter]) -> list[str]:
        if self.optimizer is None or not replaced:
            return []
        held = {id(p) for group in self.optimizer.param_groups for p in group["params"]}
        names = {id(p): n for n, p in self.model.named_parameters(remove_duplicate=False)}
        return [names[id(p)] for p in replaced if id(p) not in held]

    def _report(self, findings: tuple[Finding, ...]) -> tuple[Finding, ...]:
        new = tuple(f for f in findings if (f.code, "\0".join(f.names)) not in self._reported)
        if not new:
            return ()
        self._reported.update((f.code, "\0".join(f.names)) for f in new)
        self.findings += new
        stopping = tuple(f for f in new if f.severity == "error" and f.code in BROKEN_TIE_CODES)
        if self.on_broken == "raise" and stopping:
            for finding in new:
                if finding not in stopping:
                    warnings.warn(f"{finding.code}: {finding.message}", TieWarning, stacklevel=3)
            raise TieBrokenError(stopping)
        for finding in new:
            warnings.warn(f"{finding.code}: {finding.message}", TieWarning, stacklevel=3)
        return new

    def _moved_apart(
        self, names: list[str], parameters: dict[str, torch.nn.Parameter], step: int | None
    ) -> Finding | None:
        """A group none of whose names is left: each name stands now for the parameters whose
        names hold it (`base_model.model.lm_head.modules_to_save.default.weight` holds
        `lm_head.weight`), the trainable ones where there are any. One tensor for all: the
        tie holds. Two or more, or a name nothing holds: broken."""
        by_segment: dict[str, list[str]] = {}  # one pass over the names, not one per name
        for other in parameters:
            for segment in set(other.split(".")):
                by_segment.setdefault(segment, []).append(other)
        standing = {}
        for name in names:
            first = name.split(".")[0]
            holders = [parameters[o] for o in by_segment.get(first, ()) if _holds(o, name)]
            trained = [p for p in holders if p.requires_grad] or holders
            standing[name] = {id(p) for p in trained}
        lost = [name for name, ids in standing.items() if not ids]
        if not lost and len(set().union(*standing.values())) == 1:
            return None
        when = "" if step is None else f" (seen at step {step})"
        if lost:
            what = f"{', '.join(lost)} no longer exist{'s' if len(lost) == 1 else ''} in any form"
        else:
            what = (
                "every name now stands for a tensor of its own (a wrapper that trains a copy "
                "of each side, such as PEFT's modules_to_save on both), so they train apart"
            )
        return Finding(
            "tie-broken-during-training",
            "error",
            f"{' and '.join(names)} were one tensor when the guard started and are not now"
            f"{when}: {what}. {self._on_save(names)}Train the tie as one: wrap one side only "
            "(modules_to_save of the embedding, which the head shares), or call "
            "model.tie_weights() after the change",
            tuple(names),
        )


def _reload_differences(model: torch.nn.Module, saved: InspectReport, folder: str) -> list[Finding]:
    """Ties the model in memory holds that the checkpoint would reload without, and the
    reverse, in the names the checkpoint uses (a wrapper's prefix left out)."""
    if saved.adapter is not None or saved.checkpoint is None:
        return []  # an adapter folder: its report's own findings say what reloading does
    inner = _saved_model_in_memory(model, saved)
    if inner is None:
        return [
            _unchecked(
                folder,
                "the module holds several transformers models and none is the one saved "
                f"({saved.model.class_name} of {saved.parameters.unique:,} parameters)",
            )
        ]
    live = parameter_table(inner)
    in_memory = {frozenset(n) for n in live.names_by_object.values() if len(n) > 1}
    reloaded = {frozenset(g.names) for g in saved.alias_groups if g.kind == "same_parameter"}
    findings = []
    for names in sorted(in_memory - reloaded, key=sorted):
        findings.append(
            Finding(
                "checkpoint-reloads-differently",
                "error",
                f"{folder}: {' and '.join(sorted(names))} are one tensor in memory, but "
                f"from_pretrained ({described()}) would load this checkpoint with them untied",
                tuple(sorted(names)),
            )
        )
    for names in sorted(reloaded - in_memory, key=sorted):
        findings.append(
            Finding(
                "checkpoint-reloads-differently",
                "error",
                f"{folder}: {' and '.join(sorted(names))} are separate tensors in memory, but "
                f"from_pretrained ({described()}) would load this checkpoint with them tied, "
                "so one of the trained tensors is lost",
                tuple(sorted(names)),
            )
        )
    return findings


def _saved_model_in_memory(model: torch.nn.Module, saved: InspectReport) -> Any:
    """The model in memory the checkpoint was saved from: the only transformers model inside
    `model` (or `model` itself), or, of several (a distillation holds a teacher and a
    student), the one of the saved class and parameter count; None when none is."""
    candidates = [inner for inner, _ in transformers_models(model)]
    if len(candidates) <= 1:
        return candidates[0] if candidates else model
    for inner in candidates:
        unique = sum(p.numel() for p in inner.parameters())
        if type(inner).__name__ == saved.model.class_name and unique == saved.parameters.unique:
            return inner
    return None


def _holds(current: str, original: str) -> bool:
    """Whether the name `current` holds `original`'s segments in order, ending alike: a
    prefix added (`module.`, `base_model.model.`) or a wrapper's segments inserted
    (`….lm_head.modules_to_save.default.weight`)."""
    wanted = original.split(".")
    if current.rpartition(".")[2] != wanted[-1]:
        return False
    position = 0
    for segment in current.split("."):
        if position < len(wanted) and segment == wanted[position]:
            position += 1
    return position == len(wanted)


def _unchecked(folder: str, why: str) -> Finding:
    return Finding(
        "saved-checkpoint-unchecked",
        "warning",
        f"{folder}: the guard could not check this checkpoint ({why}); training goes on. "
        "Inspect it with `gpt2tie inspect` once it can be read",
        (folder,),
    )
