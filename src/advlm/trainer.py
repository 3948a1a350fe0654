"""`AdversarialTrainer`: a `transformers.Trainer` whose training step is an `AdversarialMethod`.

Only `training_step` changes (plus saving the method's state next to the weights and letting a method replay
batches); optimizer, schedule, clipping, mixed precision, evaluation and DDP are the Trainer's. Checkpoints
are the Trainer's too, made trustworthy (`advlm.checkpoints`): they carry the method's state, non-finite
weights are never saved (the run stops with `RunFailed`), a checkpoint is marked complete only once written,
and older ones are removed only after that. `resume_from_checkpoint` restores the method's state as well.
Every pass of every method goes through the Trainer's own `compute_loss(model, inputs, return_outputs=True,
num_items_in_batch=...)`, so a subclass's override, `compute_loss_func`, label smoothing and the token-count
normalisation under gradient accumulation hold as they do in the stock Trainer.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import Trainer, TrainerCallback

from advlm import atomic, checkpoints
from advlm.errors import Diverged
from advlm.methods import AdversarialMethod, build_method

logger = logging.getLogger(__name__)
METHOD_STATE_FILE = "advlm_method_state.pt"


class AdversarialTrainer(Trainer):
    """`Trainer(..., method=build_method("freelb"))`; without `method` it fine-tunes plainly (vanilla)."""

    def __init__(self, *args: Any, method: AdversarialMethod | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.method = method if method is not None else build_method("vanilla")
        self.method.prepare(self.model, tokenizer=self.processing_class)  # refuses a model it cannot train, early
        self.add_callback(_PrepareMethod(self))
        self.add_callback(_StopOnDivergence(self))
        self.checkpoint_info: dict[str, Any] = {}  # written into each checkpoint (the run's settings, for resume)
        self._metric_sums: dict[str, torch.Tensor] = {}
        self._metric_count = 0
        self._flops_params: int | None = None
        self._clip_params: tuple[nn.Module, list[nn.Parameter]] | None = None

    def training_step(
        self, model: nn.Module, inputs: dict[str, Any], num_items_in_batch: torch.Tensor | int | None = None
    ) -> torch.Tensor:
        if not model.training:  # the Trainer's per-step model.train() walks every module; once after eval does
            model.train()
        if hasattr(self.optimizer, "train") and callable(self.optimizer.train):
            self.optimizer.train()
        inputs = self._prepare_inputs(inputs)
        accumulation = self.current_gradient_accumulation_steps
        # the stock training_step divides the loss by the accumulation steps unless compute_loss already
        # normalised it over the accumulated batch; the pass function undoes that normalisation here, so that
        # every term a method adds (a per-batch mean) is divided alike in `backward`
        rescale = accumulation if accumulation > 1 and self._loss_is_scaled_for_ga(num_items_in_batch) else 1
        backward_kwargs = {"scale_wrt_gas": False} if self.accelerator.distributed_type == "DEEPSPEED" else {}

        def compute_loss(pass_model: nn.Module, pass_inputs: dict[str, Any]) -> tuple[torch.Tensor, Any]:
            loss, outputs = self.compute_loss(
                pass_model, pass_inputs, return_outputs=True, num_items_in_batch=num_items_in_batch
            )
            if self.args.n_gpu > 1:
                loss = loss.mean()  # DataParallel: one loss per device
            return loss * rescale if rescale != 1 else loss, outputs

        def backward(loss: torch.Tensor) -> None:
            self.accelerator.backward(loss / accumulation if accumulation > 1 else loss, **backward_kwargs)

        with self.compute_loss_context_manager():
            out = self.method.step(model, inputs, backward=backward, compute_loss=compute_loss)
        for key, value in out.metrics.items():
            value = value.detach() if torch.is_tensor(value) else torch.tensor(float(value))
            self._metric_sums[key] = self._metric_sums.get(key, 0) + value.float()
        self._metric_count += 1
        return out.loss / accumulation

    def _loss_is_scaled_for_ga(self, num_items_in_batch) -> bool:
        """The stock Trainer's rule: `loss_is_scaled_for_ga` when set, else whether the model or
        `compute_loss_func` normalised the loss by `num_items_in_batch`."""
        if getattr(self, "loss_is_scaled_for_ga", None) is not None:
            return bool(self.loss_is_scaled_for_ga)
        return bool(self.model_accepts_loss_kwargs and num_items_in_batch is not None) or (
            self.compute_loss_func is not None
        )

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Adds the method's diagnostics (averaged since the last log) to the Trainer's logs."""
        if self._metric_count and "loss" in logs:
            for key, total in self._metric_sums.items():
                logs[f"adv/{key}"] = round(float(total) / self._metric_count, 6)
            self._metric_sums, self._metric_count = {}, 0
        super().log(logs, start_time)

    def floating_point_ops(self, inputs: dict[str, Any]) -> int:
        """The Trainer's estimate, 6 x tokens x non-embedding parameters, with the parameter count taken once
        rather than by a walk over every module at every step (a millisecond a step on a small model)."""
        main = getattr(self.model, "main_input_name", "input_ids")
        if main not in inputs or not hasattr(self.model, "num_parameters"):
            return 0
        if self._flops_params is None:
            self._flops_params = self.model.num_parameters(exclude_embeddings=True)
        return 6 * inputs[main].numel() * self._flops_params

    def _clip_grad_norm(self, model: nn.Module):
        """The Trainer's clipping over a parameter list made once (its own walks all modules every step).
        Sharded and SageMaker set-ups keep the Trainer's own path."""
        from transformers.utils import is_sagemaker_mp_enabled

        mixed = getattr(self, "_has_mixed_mesh_grads", None)
        if is_sagemaker_mp_enabled() or mixed is None or mixed(model):
            return super()._clip_grad_norm(model)
        if self._clip_params is None or self._clip_params[0] is not model:
            self._clip_params = (model, list(model.parameters()))
        return self.accelerator.clip_grad_norm_(self._clip_params[1], self.args.max_grad_norm)

    def get_train_dataloader(self):
        return self.method.wrap_dataloader(super().get_train_dataloader())

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        super()._save(output_dir, state_dict)
        state = self.method.state_dict()
        if state:
            atomic.torch_save(state, os.path.join(output_dir or self.args.output_dir, METHOD_STATE_FILE))

    def _save_checkpoint(self, model: nn.Module, trial: Any) -> None:
        """The Trainer's checkpoint, refused for non-finite weights, marked complete once written; the
        rotation (`save_total_limit`) runs after the mark, so the previous checkpoint survives a kill."""
        checkpoints.assert_finite(self.model, self.state.global_step)
        folder = Path(self._get_output_dir(trial=trial)) / f"checkpoint-{self.state.global_step}"
        keep, self.args.save_total_limit = self.args.save_total_limit, None
        try:
            super()._save_checkpoint(model, trial)
            if self.args.should_save:
                checkpoints.mark_complete(folder, {"step": self.state.global_step, **self.checkpoint_info})
        except Exception as e:  # a full disk, a folder made read-only: torch and safetensors raise their own kinds
            raise checkpoints.save_failed(folder, e) from e
        finally:
            self.args.save_total_limit = keep
        if self.args.should_save:
            checkpoints.rotate(folder.parent, keep, self.state.best_model_checkpoint)

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: nn.Module | None = None) -> None:
        super()._load_from_checkpoint(resume_from_checkpoint, model)
        self._load_method_state(resume_from_checkpoint)

    def _load_best_model(self) -> None:
        super()._load_best_model()
        self._load_method_state(self.state.best_model_checkpoint or "")

    def _load_method_state(self, folder: str) -> None:
        path = os.path.join(folder, METHOD_STATE_FILE)
        if os.path.isfile(path):
            state = torch.load(path, map_location="cpu", weights_only=True)
            self.method.load_state_dict(state, model=self.model)


class _StopOnDivergence(TrainerCallback):
    """Stops the run with `RunFailed` when a logged training loss is not finite (the method's NaN guard could
    not contain it), when the guard skipped every step since the last log (nothing is being learnt), or when
    the weights are not finite (checked at every log, so at no cost between logs)."""

    def __init__(self, trainer: AdversarialTrainer):
        self.trainer = trainer

    def on_log(self, args, state, control, logs=None, **kwargs):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            raise Diverged(
                f"training diverged at step {state.global_step}: the training loss is {loss}; nothing was saved "
                f"as a result. Try a lower --lr (now {args.learning_rate:g}), --max-grad-norm 1, or check the "
                "data for extreme values"
            )
        if (logs or {}).get("adv/skipped", 0) >= 1:
            raise Diverged(
                f"training diverged by step {state.global_step}: every step since the last log had a non-finite "
                "loss, which the method's NaN guard skipped, so nothing was learnt. Try a lower --lr or a "
                "smaller perturbation (--step-size, --eps)"
            )
        checkpoints.assert_finite(self.trainer.model, state.global_step)

    def on_train_end(self, args, state, control, **kwargs):
        checkpoints.assert_finite(self.trainer.model, state.global_step)


class _PrepareMethod(TrainerCallback):
    """At the start of training, `method.prepare` with what the Trainer knows: the model, the tokenizer
    (`processing_class`) and the run's number of optimizer steps; the same call a plain loop makes."""

    def __init__(self, trainer: AdversarialTrainer):
        self.trainer = trainer

    def on_train_begin(self, args, state, control, **kwargs):
        trainer = self.trainer
        trainer.method.prepare(trainer.model, tokenizer=trainer.processing_class, total_steps=state.max_steps)
