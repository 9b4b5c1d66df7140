"""Run one training stage on Hugging Face accelerate: the same command runs on CPU, one GPU, or many GPUs/nodes
(``accelerate launch`` / ``torchrun``). Checkpoints are resumable, sharded safetensors; losses go to a JSONL log."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..hub import write_model_folder
from ..loading import load_tokenizer
from .settings import RunSettings, settings_dict
from .tasks import TASKS

CHECKPOINT_PREFIX = "checkpoint-"


def lr_factor(step: int, warmup: int, total: int, floor: float) -> float:
    """Linear warm-up to 1, then cosine decay to ``floor`` at ``total``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def build_model(settings: RunSettings, model_class: str, tokenizer):
    """A fresh (scratch / transplanted teacher) or loaded MedEIR model of the class the stage trains."""
    import configuration_medeir
    import modeling_medeir

    cls = getattr(modeling_medeir, model_class)
    init = settings.model.init
    if init in ("scratch", "minilm"):
        config = configuration_medeir.MedEIRConfig(
            vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, **settings.model.config
        )
        model = cls(config)
        if init == "minilm":
            from ..loading import minilm_path
            from .transplant import init_from_bert

            encoder = model if model_class == "MedEIRModel" else model.medeir
            init_from_bert(encoder, minilm_path(), tokenizer)
        return model
    if not Path(init).is_dir():
        raise FileNotFoundError(f"model.init is neither 'scratch', 'minilm' nor a model folder: {init}")
    model = cls.from_pretrained(init)
    if model.config.vocab_size != len(tokenizer):
        raise ValueError(f"{init} has vocab_size {model.config.vocab_size} but the tokenizer has {len(tokenizer)}")
    return model


def checkpoint_step(folder: Path) -> int | None:
    """The step of a complete checkpoint folder (``checkpoint-<step>``); None for anything else, such as a
    ``checkpoint-<step>.tmp`` still being written."""
    suffix = folder.name[len(CHECKPOINT_PREFIX) :]
    return int(suffix) if folder.name.startswith(CHECKPOINT_PREFIX) and suffix.isdigit() else None


def latest_checkpoint(output_dir: Path) -> Path | None:
    """The newest complete checkpoint in ``output_dir``."""
    found = [p for p in output_dir.glob(f"{CHECKPOINT_PREFIX}*") if checkpoint_step(p) is not None]
    return max(found, key=checkpoint_step, default=None)


def save_model_folder(
    model, settings: RunSettings, folder: Path, prompts: dict[str, str] | None, state_dict: dict[str, torch.Tensor]
) -> None:
    """The model (weights from ``state_dict``) with the run's tokenizer as loaded, not as used (a tokenizer that has
    been called with truncation/padding would save that state, e.g. max_length 128, into tokenizer.json). An embedding
    model (``prompts`` not None) is written as a complete Hub folder in float32 by ``medeir.hub.write_model_folder``,
    with the prompts it was trained with, which ``medeir eval``, mining and ``refresh_root`` read; an MLM model as
    plain ``save_pretrained`` shards."""
    tokenizer = load_tokenizer(settings.model.tokenizer)
    if prompts is not None:
        write_model_folder(model, tokenizer, folder, prompts=prompts, dtype=torch.float32,
                           max_shard_size=settings.max_shard_size, state_dict=state_dict)
        return
    model.save_pretrained(folder, state_dict=state_dict, max_shard_size=settings.max_shard_size)
    tokenizer.save_pretrained(folder)


def rank_state(task) -> dict:
    """This process's data-sampler and random-number state, for an exact resume."""
    state = {"data": task.data_state(), "python": random.getstate(), "numpy": np.random.get_state(),
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rank_state(task, step: int, state: dict | None) -> None:
    """Undo ``rank_state``; without a saved state (e.g. more processes than the run that saved it), re-seed by step."""
    if state is None:
        task.resume(step, None)
        return
    task.resume(step, state["data"])
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(accelerator, model, optimizer, scheduler, settings: RunSettings, step: int, task) -> Path:
    """The model folder (``save_model_folder``) + optimizer/scheduler state + each process's ``rank_state`` +
    trainer_state.json, written as ``checkpoint-<step>.tmp`` and renamed when complete, so that a process killed
    while saving leaves the previous checkpoint as the newest."""
    output_dir = Path(settings.output_dir)
    folder = output_dir / f"{CHECKPOINT_PREFIX}{step}"
    partial = folder.with_name(folder.name + ".tmp")
    state_dict = accelerator.get_state_dict(model)  # on every process: a collective operation under FSDP
    if accelerator.is_main_process:
        shutil.rmtree(partial, ignore_errors=True)
        save_model_folder(accelerator.unwrap_model(model), settings, partial, task.prompts, state_dict)
        torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, partial / "optimizer.pt")
    accelerator.wait_for_everyone()
    torch.save(rank_state(task), partial / f"rank-{accelerator.process_index}.pt")
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        state = {"step": step, "processes": accelerator.num_processes, "settings": settings_dict(settings)}
        (partial / "trainer_state.json").write_text(json.dumps(state, indent=2))
        shutil.rmtree(folder, ignore_errors=True)
        partial.rename(folder)
        for old in output_dir.glob(f"{CHECKPOINT_PREFIX}*"):
            old_step = checkpoint_step(old)
            if old != folder and (old_step is None or (old_step < step and not settings.keep_checkpoints)):
                shutil.rmtree(old)
    accelerator.wait_for_everyone()
    return folder


def run(settings: RunSettings, resume: bool = True) -> Path:
    """Train one stage; resumes from the newest checkpoint in ``output_dir`` when there is one. Returns the folder
    of the final model (``output_dir/final``, a loadable MedEIR model folder)."""
    from accelerate import Accelerator
    from accelerate.utils import DistributedType, set_seed

    if settings.stage not in TASKS:
        raise ValueError(f"unknown stage {settings.stage!r}; choose from {sorted(TASKS)}")
    accelerator = Accelerator(mixed_precision=settings.mixed_precision, cpu=not torch.cuda.is_available())
    fsdp_asked = os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true"  # accelerate's own test of it
    kind = accelerator.distributed_type
    if fsdp_asked and kind != DistributedType.FSDP:
        accelerator.print(  # accelerate shards only multi-GPU (or other multi-accelerator) jobs, and says nothing
            f"warning: the accelerate config asks for FSDP, but accelerate runs this {kind.value} job unsharded: "
            "every process holds the whole model and optimizer state"
        )
    set_seed(settings.seed)
    output_dir = Path(settings.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = load_tokenizer(settings.model.tokenizer)
    # each process draws its own batches (data-parallel: N processes see N different batches a step)
    task_settings = dataclasses.replace(settings, seed=settings.seed + accelerator.process_index)
    task = TASKS[settings.stage](task_settings, tokenizer, accelerator.device)
    checkpoint = latest_checkpoint(output_dir) if resume else None
    if checkpoint is not None and kind == DistributedType.FSDP:
        raise NotImplementedError(
            f"{checkpoint}: resuming an FSDP run is not supported (checkpoints hold the main process's optimizer "
            "state only); start a new output_dir with model.init set to the checkpoint folder"
        )
    model = build_model(
        settings if checkpoint is None else _with_init(settings, checkpoint), task.model_class, tokenizer
    )
    if settings.attn_implementation:
        model.set_attn_implementation(settings.attn_implementation)
    if settings.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay)
    total = task.total_steps
    if not 0 <= settings.stop_at_step <= total:
        raise ValueError(
            f"stop_at_step must be between 0 (no stop) and the run's {total} steps, got {settings.stop_at_step}"
        )
    end = settings.stop_at_step or total  # the step after which this invocation ends
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, settings.warmup_steps, total, settings.min_lr_ratio)
    )
    start = 0
    if checkpoint is not None:
        state = torch.load(checkpoint / "optimizer.pt", map_location="cpu", weights_only=False)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start = json.loads((checkpoint / "trainer_state.json").read_text())["step"]
        rank_file = checkpoint / f"rank-{accelerator.process_index}.pt"
        restore_rank_state(task, start, torch.load(rank_file, weights_only=False) if rank_file.is_file() else None)
        accelerator.print(f"resumed from {checkpoint} at step {start}")
    model, optimizer = accelerator.prepare(model, optimizer)
    (output_dir / "settings.json").write_text(json.dumps(settings_dict(settings), indent=2))

    deadline = time.monotonic() + settings.time_limit_minutes * 60 if settings.time_limit_minutes else math.inf
    log = (output_dir / "loss_log.jsonl").open("a")
    model.train()
    step = start
    bar = tqdm(total=total, initial=start, disable=not accelerator.is_main_process, desc=settings.stage)
    t0, running, window = time.monotonic(), 0.0, 0
    while step < end:
        loss = task.loss(model, step)
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(model.parameters(), settings.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        running += accelerator.reduce(loss.detach(), "mean").item()  # the mean over the processes' batches
        window += 1
        bar.update(1)
        if step % settings.log_every == 0 or step == end:
            record = {"step": step, "loss": running / window, "lr": scheduler.get_last_lr()[0],
                      "seconds": round(time.monotonic() - t0, 1)}
            if accelerator.is_main_process:
                log.write(json.dumps(record) + "\n")
                log.flush()
            bar.set_postfix(loss=f"{record['loss']:.4f}")
            running, window = 0.0, 0
        out_of_time = time.monotonic() > deadline
        if math.isfinite(deadline):  # every process stops at the same step, or the others would wait forever
            flag = torch.tensor(float(out_of_time), device=accelerator.device)
            out_of_time = bool(accelerator.reduce(flag, "sum").item())
        if step % settings.save_every == 0 or out_of_time or (step == end and end < total):
            save_checkpoint(accelerator, model, optimizer, scheduler, settings, step, task)
        if out_of_time:
            accelerator.print(f"time limit reached at step {step}; resume by running the same command again")
            break
    bar.close()
    if end < total and step >= end:
        accelerator.print(f"stopped after step {end} of {total} (stop_at_step); raise or clear it to go on")
    log.close()
    final = output_dir / "final"
    if step >= total:
        state_dict = accelerator.get_state_dict(model)
        if accelerator.is_main_process:
            save_model_folder(accelerator.unwrap_model(model), settings, final, task.prompts, state_dict)
        accelerator.wait_for_everyone()
        accelerator.print(f"final model: {final}")
    return final


def _with_init(settings: RunSettings, checkpoint: Path) -> RunSettings:
    """The same settings, with the model initialised from a checkpoint folder."""
    return dataclasses.replace(settings, model=dataclasses.replace(settings.model, init=str(checkpoint)))
