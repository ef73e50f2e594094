"""The training loop: one accelerate loop for one CPU process, DDP over gloo, FSDP2 (CPU: sharding.py), DeepSpeed."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import shutil
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

import torch

from ayakit.io import remove_stale_temporaries, write_manifest
from ayakit.models import arch_impl
from ayakit.models.packed import PackStats, collate
from ayakit.models.packed_lm import PackedLM
from ayakit.recipe import Recipe, RecipeError
from ayakit.train import checkpoint as ckpt
from ayakit.train import sharding
from ayakit.train.dataset import Encoded, check_columns, load_validation, mixture_files, mixture_fingerprint
from ayakit.train.loss import backward_scale, local_weight, mean_loss
from ayakit.train.model import build_model, check_recipe, save_model
from ayakit.train.packing import epoch_rows
from ayakit.train.stream import RowStream, rank_rows
from ayakit.train.tokenize import open_split, token_totals, tokenize
from ayakit.train.schedule import Schedule, make_lambda_scheduler, steps_that_fit
from ayakit.train.tokenizer import build_tokenizer, load_tokenizer

METRICS = "metrics.jsonl"


def model_dir(run_dir: Path) -> Path:
    """Where a run's trained model lives."""
    return Path(run_dir) / "model"


def row_lengths(recipe: Recipe, arch: str, totals: dict[str, int]) -> tuple[int, int | None]:
    """Capacity of one packed row: (encoder or whole-row tokens, decoder tokens or None); totals: the train split's
    token counts (source_tokens, target_tokens)."""
    t = recipe.train
    ratio = totals["target_tokens"] / max(totals["source_tokens"], 1)
    return arch_impl(arch).row_capacity(t.max_source_length, t.max_target_length, t.pack_source_length,
                                        t.pack_target_length, ratio)


def make_optimizer(recipe: Recipe, model: torch.nn.Module) -> torch.optim.Optimizer:
    """Adafactor (the paper: fixed lr 3e-4, no relative step) or AdamW; no weight decay on norms and biases."""
    t = recipe.train
    embedding = _scaled_embedding(recipe, model)
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2 and p is not embedding]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim < 2]
    groups = [{"params": decay, "weight_decay": t.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if t.optimizer == "adamw":
        if embedding is not None:
            # T5 initialises its (tied) embedding with std 1, not d_model^-0.5 like the other weights, because
            # Adafactor scales each update by the parameter's RMS. AdamW's steps have a fixed size, so that table
            # would move sqrt(d_model) times slower than the rest relative to its scale and a from-scratch model
            # learns its output layer far too slowly (demo: val loss 4.22 after 193 steps; 4.13 after 38 with this).
            groups.append({"params": [embedding], "weight_decay": t.weight_decay,
                           "lr": t.lr * model.config.d_model ** 0.5})
        return torch.optim.AdamW(groups, lr=t.lr, betas=(0.9, 0.999), eps=1e-8)
    if embedding is not None:
        groups[0]["params"].append(embedding)
    from ayakit.train.adafactor import ShardableAdafactor

    return ShardableAdafactor(groups, lr=t.lr, scale_parameter=False, relative_step=False, warmup_init=False)


def _scaled_embedding(recipe: Recipe, model: torch.nn.Module) -> torch.nn.Parameter | None:
    """The embedding table of a T5 model built from a preset (std-1 init); None otherwise (pretrained, causal)."""
    config = getattr(model, "config", None)
    if recipe.model.name_or_path or not getattr(config, "scale_decoder_outputs", False):
        return None
    weight = model.get_input_embeddings().weight
    return weight if weight.requires_grad else None


def make_scheduler(recipe: Recipe, optimizer: torch.optim.Optimizer, total_steps: int) -> tuple[Any, Schedule]:
    """Warm-up then constant, linear or cosine decay; the Schedule's horizon can move (train.max_minutes)."""
    t = recipe.train
    return make_lambda_scheduler(optimizer, t.schedule, t.warmup_steps, total_steps)


def _mixed_precision(recipe: Recipe) -> str:
    p = recipe.train.precision
    if p == "fp32":
        return "no"
    if p == "fp16" and not torch.cuda.is_available():
        raise RecipeError("train.precision=fp16 needs a GPU; use bf16 or fp32 on the CPU")
    return p


def _progress_columns() -> list[Any]:
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}  lr {task.fields[lr]}  {task.fields[tps]} tok/s"),
            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn()]


def choose_threads(requested: int | None, local_processes: int) -> int:
    """torch threads: the recipe's, else the idle cores shared among this machine's training processes.

    Oversubscribed OpenMP threads spin against each other: on a busy 2-core machine a step with 2 threads took
    10x longer than with 1, so a busy machine (load average) gets fewer threads.
    """
    if requested:
        return requested
    cores = os.cpu_count() or 1
    try:
        busy = os.getloadavg()[0]
    except OSError:
        busy = 0.0
    idle = max(1, round(cores - busy)) if busy > 0.5 * cores else cores
    return max(1, min(torch.get_num_threads(), idle // max(local_processes, 1) or 1))


def train(recipe: Recipe, run_dir: Path, resume: bool = False, progress: Any = None) -> Path:
    """Train on run_dir/data into run_dir/model (HF dir, ayakit.json, metrics.jsonl, tb/, checkpoints/); its path."""
    from accelerate import Accelerator

    torch.set_flush_denormal(True)  # denormals slow T5 on CPUs several-fold as training goes on
    # accelerate warns on every checkpoint that tied embeddings are saved once; loading ties them again
    logging.getLogger("accelerate.utils.other").setLevel(logging.ERROR)
    entered = time.monotonic()
    check_recipe(recipe)
    t = recipe.train
    run_dir = Path(run_dir)
    check_columns(mixture_files(run_dir))  # a missing or malformed mixture is an error before anything is built
    out = model_dir(run_dir)
    # accelerate keeps one global state per process; a second train() in the same process (the runner, ablations)
    # may use another precision. The process group (PartialState) is kept.
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(reset_partial_state=False)
    GradientState._reset_state()
    # cpu=True is what makes accelerate start DDP over gloo when several CPU processes are launched
    accelerator = Accelerator(mixed_precision=_mixed_precision(recipe), cpu=not torch.cuda.is_available())
    main = accelerator.is_main_process
    log = accelerator.print
    threads = choose_threads(t.threads, accelerator.num_processes if accelerator.device.type == "cpu" else 1)
    torch.set_num_threads(threads)
    plan = sharding.choose(recipe, accelerator, warn=log)

    tok_path = run_dir / "tokenizer"
    if main and not (tok_path / "tokenizer_config.json").is_file():
        build_tokenizer(recipe, run_dir, progress)
    if main:  # the tokenize stage, unless `ayakit run` / `ayakit tokenize` already made these shards
        tokenize(recipe, run_dir)
    accelerator.wait_for_everyone()
    tokenizer = load_tokenizer(tok_path)
    model, meta = build_model(recipe, tokenizer)
    arch = meta["arch"]
    start_id = arch_impl(arch).decoder_start(model, tokenizer.pad_token_id)

    train_shards, held_out = open_split(run_dir, "train"), open_split(run_dir, "validation")
    val_set = load_validation(held_out, t.validation_max_examples)
    unused_held_out = len(held_out) - len(val_set)
    if unused_held_out:
        log(f"validation: {len(val_set)} held-out examples used (train.validation_max_examples), "
            f"{unused_held_out} more held out and not trained on")
    totals = token_totals(run_dir)
    row_src, row_tgt = row_lengths(recipe, arch, totals["train"])
    stream = RowStream(train_shards, arch, t.packing, row_src, row_tgt, recipe.seed)
    world, rank = accelerator.num_processes, accelerator.process_index
    rows_per_step = t.batch_size * t.grad_accum * world
    # with train.epochs, one pass over the index (lengths only) counts an epoch's rows
    total_steps = t.steps or max(1, math.ceil((t.epochs or 1.0) * stream.rows_in_epoch(0) / rows_per_step))

    compute_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(t.precision, torch.float32)
    wrapper = PackedLM(model, arch, mask_dtype=compute_dtype)
    if plan.own:  # before the optimiser is built: sharding replaces the parameters with DTensors
        sharding.shard(wrapper, model, accelerator.device, plan)
    if t.compile:
        wrapper = torch.compile(wrapper)
    optimizer = make_optimizer(recipe, model)
    planned_steps = total_steps
    scheduler, schedule = make_scheduler(recipe, optimizer, total_steps)
    if plan.own:  # accelerate would treat the sharded model as a replicated one: its state is saved here
        no_sync, layout = sharding.no_gradient_sync, sharding.LAYOUT
        save_state = partial(sharding.save_state, wrapper=wrapper, optimizer=optimizer, scheduler=scheduler)
        load_state = partial(sharding.load_state, wrapper=wrapper, optimizer=optimizer, scheduler=scheduler, warn=log)
    else:
        wrapper, optimizer = accelerator.prepare(wrapper, optimizer)
        accelerator.register_for_checkpointing(scheduler)
        no_sync, save_state, load_state, layout = accelerator.no_sync, None, None, ckpt.ACCELERATE
    log(plan.describe(world))

    ckpt_root = out / "checkpoints"
    start_step, history = 0, {"tokens_seen": 0, "examples_seen": 0, "target_tokens_seen": 0, "train_seconds": 0.0}
    stats = PackStats(0, 0, 0, 0)
    last_loss = last_val = None
    if resume:
        found = ckpt.load_latest(accelerator, ckpt_root, warn=log, load=load_state, layout=layout)
        if found is None:
            log(f"no checkpoint in {ckpt_root}: starting from scratch")
        else:
            start_step = found.step
            history.update(found.state.get("history", {}))
            if "stream" in found.state:
                stream.load(found.state["stream"])
            else:  # a checkpoint from before streams recorded their position: replay the rows it consumed
                stream.skip(found.state.get("rows_consumed", start_step * rows_per_step))
            stats = PackStats(**found.state.get("pack_stats", {"rows": 0, "examples": 0, "tokens": 0, "slots": 0}))
            # a run killed after its last checkpoint resumes with no step left: its losses come from there
            last_loss, last_val = found.state.get("last_loss"), found.state.get("last_val")
            if found.state.get("planned_steps") == planned_steps:
                total_steps = schedule.total  # restored with the scheduler: the horizon may have been fitted
            else:  # the recipe now asks for another length: its plan wins
                schedule.total = total_steps
            log(f"resuming from {found.path} (step {start_step} of {total_steps})")
    if main:
        _prepare_outputs(out, fresh=start_step == 0, step=start_step)
        if start_step and last_loss is None:  # a checkpoint written before the losses were kept in it
            last_loss, last_val = _last_losses(out / METRICS, start_step)
    accelerator.wait_for_everyone()

    writer = _tensorboard(out, start_step) if main else None
    own_progress = progress is None and main
    if own_progress:
        from rich.progress import Progress

        progress = Progress(*_progress_columns())
        progress.start()
    task = progress.add_task("train", total=total_steps, completed=start_step, loss="-", lr="-", tps="-") \
        if main and progress is not None else None

    deadline = time.monotonic() + t.max_minutes * 60 if t.max_minutes else None
    metrics_path = out / METRICS
    window_tokens, window_start = 0, time.monotonic()
    step = start_step
    first_step_s = None
    loop_start, next_fit = time.monotonic(), start_step + 10
    wrapper.train()
    try:
        while step < total_steps:
            step_start = time.monotonic()
            global_rows = stream.take(rows_per_step)
            epoch = stream.progress
            batches, local_tokens = [], 0
            for rows in rank_rows(global_rows, rank, world, t.batch_size, t.grad_accum):
                local_rows, sources, targets = read_rows(train_shards, rows)  # only this process's examples
                batch, st = collate(local_rows, sources, targets, arch, tokenizer.pad_token_id, start_id,
                                    t.loss_normalization)
                batches.append({k: v.to(accelerator.device) for k, v in batch.items()})
                stats.add(st)
                local_tokens += st.tokens
            # global denominators first: sum of loss weights, target tokens, all non-pad tokens
            counts = torch.tensor([float(local_weight(batches)),
                                   sum(float((b["labels"] != -100).sum()) for b in batches), float(local_tokens)],
                                  dtype=torch.float64, device=accelerator.device)
            counts = accelerator.reduce(counts, reduction="sum")
            scale = backward_scale(counts[0], world)
            loss_total = torch.zeros((), dtype=torch.float64, device=accelerator.device)
            for m, batch in enumerate(batches):
                sync = contextlib.nullcontext() if m == len(batches) - 1 else no_sync(wrapper)
                with sync, accelerator.autocast():
                    loss_sum = wrapper(batch)
                    accelerator.backward(loss_sum * scale)
                loss_total += loss_sum.detach().double()
            if t.clip:
                accelerator.clip_grad_norm_(wrapper.parameters(), t.clip)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            if step == start_step + 1:
                first_step_s = time.monotonic() - entered  # from train() to one finished step: setup cost

            loss_total = accelerator.reduce(loss_total, reduction="sum")
            last_loss = mean_loss(loss_total, counts[0])
            n_examples = sum(len(r) for r in global_rows)
            history["examples_seen"] += n_examples
            history["target_tokens_seen"] += int(counts[1])
            history["tokens_seen"] += int(counts[2])
            history["train_seconds"] += time.monotonic() - step_start
            window_tokens += int(counts[2])
            lr = scheduler.get_last_lr()[0]
            if main and (step % t.log_every == 0 or step == total_steps or step == start_step + 1):
                now = time.monotonic()
                tps = window_tokens / max(now - window_start, 1e-9)
                window_tokens, window_start = 0, now
                row = {"step": step, "loss": last_loss, "lr": lr, "tokens_per_s": tps,
                       "examples_seen": history["examples_seen"], "epoch": epoch, "split": "train"}
                _append_jsonl(metrics_path, row)
                writer.add_scalar("train/loss", last_loss, step)
                writer.add_scalar("train/lr", lr, step)
                writer.add_scalar("train/tokens_per_s", tps, step)
                if task is not None:
                    progress.update(task, loss=f"{last_loss:.3f}", lr=f"{lr:.2e}", tps=f"{tps:,.0f}")
            if task is not None:
                progress.update(task, completed=step)

            if deadline is not None and step >= next_fit and step < total_steps:
                # fit the schedule's horizon to the time budget, so the decay ends at the deadline
                pace = (time.monotonic() - loop_start) / (step - start_step)
                fit = steps_that_fit(step, pace, deadline - time.monotonic(), planned_steps)
                fit = int(accelerator.reduce(torch.tensor([fit], device=accelerator.device), reduction="min").item()) \
                    if world > 1 else fit
                if fit != total_steps:
                    if fit < planned_steps and total_steps == planned_steps:
                        log(f"train.max_minutes={t.max_minutes}: {planned_steps} steps do not fit; the schedule now "
                            f"ends at step {fit} (re-measured as training goes)")
                    schedule.total = total_steps = fit
                    if task is not None:
                        progress.update(task, total=total_steps)
                next_fit = step * 2
            stop = deadline is not None and time.monotonic() > deadline
            if world > 1 and deadline is not None:  # every process must agree to stop at the same step
                flag = accelerator.reduce(torch.tensor([float(stop)], device=accelerator.device), reduction="max")
                stop = bool(flag.item())
            final = step == total_steps or stop
            if len(val_set) and (step % t.eval_every == 0 or final):
                last_val = validation_loss(wrapper, accelerator, val_set, arch, t, tokenizer.pad_token_id, start_id,
                                           row_src, row_tgt, recipe.seed, lockstep=plan.sharded)
                if main:
                    _append_jsonl(metrics_path, {"step": step, "val_loss": last_val, "split": "validation"})
                    writer.add_scalar("validation/loss", last_val, step)
            if step % t.checkpoint_every == 0 or final:
                state = {"rows_consumed": step * rows_per_step, "total_steps": total_steps,
                         "planned_steps": planned_steps, "history": history,
                         "pack_stats": vars(stats).copy(), "world_size": world, "stream": stream.state(),
                         "last_loss": last_loss, "last_val": last_val}
                ckpt.save_checkpoint(accelerator, ckpt_root, step, state, t.keep_checkpoints, save=save_state,
                                     layout=layout)
            if stop:
                log(f"train.max_minutes={t.max_minutes} reached: stopping at step {step} of {total_steps}")
                break
    finally:
        if own_progress:
            progress.stop()
        if writer is not None:
            writer.close()

    # every process takes part in gathering a sharded (FSDP / ZeRO-3) state; only the main one writes
    full_state = sharding.full_state_dict(wrapper) if plan.own else accelerator.get_state_dict(wrapper)
    if main:
        state = {k.removeprefix("model."): v for k, v in full_state.items()} if full_state else None
        _save_final(accelerator.unwrap_model(wrapper).model, tokenizer, meta, out, recipe, run_dir, state, {
            "steps": step, "total_steps": total_steps, "planned_steps": planned_steps,
            "stopped_early": step < planned_steps,
            "final_train_loss": last_loss, "final_val_loss": last_val, "world_size": world, "threads": threads,
            "seconds_to_first_step": first_step_s, "distributed_type": str(accelerator.distributed_type).split(".")[-1],
            "sharding": plan.manifest(),
            "rows_per_step": rows_per_step, "row_source_length": row_src, "row_target_length": row_tgt,
            "train_examples": len(train_shards), "validation_examples": len(val_set),
            "held_out_unused": unused_held_out, "token_shards": str(train_shards.directory),
            "packing": {"enabled": t.packing, "fill_rate": stats.fill_rate,
                        "examples_per_row": stats.examples_per_row, "rows": stats.rows},
            **history,
            "tokens_per_s": history["tokens_seen"] / max(history["train_seconds"], 1e-9),
            "target_tokens_per_s": history["target_tokens_seen"] / max(history["train_seconds"], 1e-9),
        })
    accelerator.wait_for_everyone()
    return out


def read_rows(shards: Any, rows: list[list[int]]) -> tuple[list[list[int]], list[list[int]], list[list[int]]]:
    """Rows renumbered 0..k-1 and the (sources, targets) of their examples, read from the token shards."""
    ids = [i for row in rows for i in row]
    sources, targets = shards.gather(ids)
    local, k = [], 0
    for row in rows:
        local.append(list(range(k, k + len(row))))
        k += len(row)
    return local, sources, targets


def validation_loss(wrapper: Any, accelerator: Any, data: Encoded, arch: str, t: Any, pad_id: int,
                    start_id: int | None, row_src: int, row_tgt: int | None, seed: int, lockstep: bool = False
                    ) -> float:
    """The loss (same normalisation as training) on the held-out slice, summed over all processes.

    lockstep: every process runs as many forwards as the busiest one (a sharded model's forward is a collective);
    a process out of rows repeats a forward on the first row and does not count it.
    """
    rows = epoch_rows(data.sources, data.targets, arch, t.packing, row_src, row_tgt, seed, 0)
    mine = rows[accelerator.process_index:: accelerator.num_processes]
    batches = [mine[i: i + t.batch_size] for i in range(0, len(mine), t.batch_size)]
    if lockstep:
        most = int(accelerator.reduce(torch.tensor([len(batches)], device=accelerator.device), reduction="max"))
        batches += [[]] * (most - len(batches))
    total = torch.zeros(2, dtype=torch.float64, device=accelerator.device)
    wrapper.eval()
    with torch.no_grad():
        for chunk in batches:
            batch, _ = collate(chunk or rows[:1], data.sources, data.targets, arch, pad_id, start_id,
                               t.loss_normalization)
            batch = {k: v.to(accelerator.device) for k, v in batch.items()}
            with accelerator.autocast():
                loss = wrapper(batch).double()
            if chunk:
                total[0] += loss
                total[1] += batch["weight"].sum().double()
    wrapper.train()
    total = accelerator.reduce(total, reduction="sum")
    return mean_loss(total[0], total[1])


def _tensorboard(out: Path, start_step: int) -> Any:
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(log_dir=str(out / "tb"), purge_step=start_step or None)


def _append_jsonl(path: Path, row: dict) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(row) + "\n")


def _prepare_outputs(out: Path, fresh: bool, step: int) -> None:
    """A fresh run starts with empty metrics and no old checkpoints; a resumed one keeps metrics up to its step."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "manifest.json").unlink(missing_ok=True)  # the manifest marks a finished model; this one is not yet
    for stale in out.glob(".final.*"):  # what a run killed while saving its final model left behind
        shutil.rmtree(stale, ignore_errors=True)
    remove_stale_temporaries(out)
    metrics = out / METRICS
    if fresh:
        for name in ("checkpoints", "tb"):
            if (out / name).exists():
                shutil.rmtree(out / name)
        metrics.unlink(missing_ok=True)
        return
    if metrics.is_file():
        kept = [line for line in metrics.read_text(encoding="utf-8").splitlines()
                if line.strip() and json.loads(line).get("step", 0) <= step]
        with tempfile.NamedTemporaryFile("w", dir=out, delete=False, encoding="utf-8", prefix=".metrics.",
                                         suffix=".tmp") as fh:
            fh.write("".join(line + "\n" for line in kept))
        os.replace(fh.name, metrics)


def _last_losses(metrics: Path, step: int) -> tuple[float | None, float | None]:
    """The last train and validation losses metrics.jsonl recorded up to step."""
    loss = val = None
    if metrics.is_file():
        for line in metrics.read_text(encoding="utf-8").splitlines():
            row = json.loads(line) if line.strip() else {}
            if row.get("step", step + 1) <= step:
                loss = row["loss"] if row.get("split") == "train" and "loss" in row else loss
                val = row["val_loss"] if "val_loss" in row else val
    return loss, val


def _save_final(model: Any, tokenizer: Any, meta: dict, out: Path, recipe: Recipe, run_dir: Path,
                state: dict | None, summary: dict) -> None:
    """The trained model as an HF directory: each file written beside, then renamed into place; manifest last."""
    with tempfile.TemporaryDirectory(dir=out, prefix=".final.") as tmp:
        save_model(model, tokenizer, meta | {"trained": True, "steps": summary["steps"]}, Path(tmp), recipe,
                   state_dict=state)
        for f in Path(tmp).iterdir():
            os.replace(f, out / f.name)
    inputs = {"recipe": {k: recipe.model_dump(mode="json")[k] for k in ("seed", "model", "train", "tokenizer")},
              "mixture": mixture_fingerprint(run_dir)}
    write_manifest(out, "train", inputs, {"files": sorted(p.name for p in out.iterdir() if p.is_file())},
                   **summary)
