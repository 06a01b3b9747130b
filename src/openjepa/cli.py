"""``openjepa`` command line: train | sweep | eval | embed | collect | plan | report | models | config.

The launcher: it parses arguments and calls the library; the library never imports it.
"""

from __future__ import annotations

import argparse
from pathlib import Path
import logging
import sys
from typing import Callable, NoReturn, Sequence

EPILOG = "Settings are key=value overrides of the config schema, e.g. optim.lr=1e-3 data.batch_size=256."
CONFIG_ACTIONS = "show [NAME] [key=value ...] (print a resolved config) or list (the shipped config names)"


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, ending with where the usage is, and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}; see '{self.prog} --help'\n")


def _int_at_least(low: int) -> Callable[[str], int]:
    """An argparse ``type``: an integer >= ``low``, else a one-line error naming the option."""

    def parse(text: str) -> int:
        try:
            n = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text!r}") from None
        if n < low:
            raise argparse.ArgumentTypeError(f"must be an integer >= {low}, got {n}")
        return n

    return parse


def _version() -> str:
    """The installed package's version, else ``openjepa.__version__`` (a source checkout on PYTHONPATH)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("openjepa")
    except PackageNotFoundError:
        from openjepa import __version__

        return __version__


def _checked_device(device: str | None) -> str | None:
    """``--device`` checked before any checkpoint is loaded: an unknown name or a device this machine
    lacks raises :class:`openjepa.errors.ConfigError` naming the choices."""
    if device is not None:
        from openjepa.engine.precision import resolve_device

        resolve_device(device)
    return device


def _cmd_train(args: argparse.Namespace) -> int:
    from openjepa.config import load_config
    from openjepa.report.pipeline import train_and_evaluate

    cfg = load_config(args.config, args.overrides)
    summary = train_and_evaluate(cfg, resume=args.resume, allow_config_change=args.allow_config_change)
    if summary["trained"]:
        print(f"run saved in {summary['run_dir']}")
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    from openjepa.report.sweep import run_sweep

    stem = Path(args.config).stem if args.config else "quickstart"
    out = args.out or f"runs/sweep_{stem}"
    devices = [d for d in (args.devices or "").split(",") if d]
    table = run_sweep(args.config, args.overrides, out, jobs=args.jobs, devices=devices,
                      progress=not args.no_progress)
    return 1 if table.get("failed") else 0


def _cmd_finetune(args: argparse.Namespace) -> int:
    from openjepa.config import load_config, to_dict
    from openjepa.engine.runs import saved_config
    from openjepa.report.pipeline import train_and_evaluate

    source = saved_config(args.source)  # the source's model and data: the architecture to load, the labels to learn
    base = {k: v for k, v in to_dict(source).items() if k in ("model", "data", "seed")}
    overrides = ["train.method=finetune", f"finetune.source={args.source}", *args.overrides]
    if not any(o.startswith("run_dir=") for o in overrides):
        overrides.insert(0, f"run_dir={str(args.source).rstrip('/')}_finetune")
    cfg = load_config(args.config or "finetune/base", overrides, base=base)
    summary = train_and_evaluate(cfg, resume=args.resume, allow_config_change=args.allow_config_change)
    if summary["trained"]:
        print(f"run saved in {summary['run_dir']}")
    return 0


def _cmd_convert(args: argparse.Namespace) -> int:
    from openjepa.interop.export import save_encoder
    from openjepa.pretrained import load_pretrained

    model = load_pretrained(args.source, which=args.encoder)
    out = save_encoder(model.encoder, model.config, Path(args.out) / "encoder.safetensors")
    print(f"{args.source} ({model.format}, {args.encoder} encoder) -> {out}")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from openjepa.interop.export import export_to
    from openjepa.pretrained import load_pretrained

    model = load_pretrained(args.source, which=args.encoder)
    for line in export_to(model.encoder, model.config, args.format, Path(args.out)):
        print(line)
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from openjepa.eval.frozen import evaluate_checkpoint

    protocols = args.protocol
    if protocols is not None:
        # "--protocol knn eval.knn_k=10": argparse gives the trailing override to --protocol; hand it back.
        args.overrides = [*args.overrides, *(p for p in protocols if "=" in p)]
        protocols = [p for p in protocols if "=" not in p]
    evaluate_checkpoint(args.checkpoint, args.overrides, device=_checked_device(args.device), protocols=protocols)
    return 0


def _cmd_embed(args: argparse.Namespace) -> int:
    from openjepa.eval.embed import EmbedError, embed_checkpoint

    try:
        embed_checkpoint(args.checkpoint, args.inputs, args.out, device=_checked_device(args.device),
                         batch_size=args.batch_size, encoder=args.encoder, pool=args.pool, on_error=args.on_error,
                         num_workers=args.num_workers, progress=not args.no_progress)
    except EmbedError as e:
        print(f"openjepa embed: error: {e}", file=sys.stderr)
        return 2
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from openjepa.report import write_report

    out = write_report(args.run_dir, out=args.out, device=_checked_device(args.device), max_images=args.max_images,
                       tsne=not args.no_tsne, progress=False if args.no_progress else None, overrides=args.overrides)
    print(f"report written to {out}")
    return 0


def _cmd_plan(args: argparse.Namespace) -> int:
    from openjepa.planning.evaluate import plan_checkpoint

    plan_checkpoint(args.checkpoint, args.overrides, env=args.env, episodes=args.episodes,
                    device=_checked_device(args.device), baselines=not args.no_baselines, out=args.out,
                    progress=not args.no_progress)
    return 0


def _cmd_collect(args: argparse.Namespace) -> int:
    from openjepa.planning.collect import collect

    env_kwargs = {} if args.img_size is None else {"img_size": args.img_size}
    out = collect(args.env, args.episodes, args.steps, args.out, seed=args.seed, policy=args.policy,
                  env_kwargs=env_kwargs, shard_size=args.shard_size, progress=not args.no_progress)
    print(f"{args.episodes} episodes x {args.steps} steps of {args.env} written to {out}")
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    import torch

    from openjepa.errors import ConfigError
    from openjepa.models import create_model, list_models

    names = list_models(args.pattern)
    if not names:
        raise ConfigError(f"no registered model matches {args.pattern!r}; models: {', '.join(list_models())}")
    for name in names:
        if args.params:
            with torch.device("meta"):  # shapes only: no memory, no init time, even for vit_giant
                model = create_model(name, img_size=224, patch_size=16)
            n = sum(p.numel() for p in model.parameters() if p.requires_grad)
            print(f"{name:<14} {n / 1e6:8.1f}M params")
        else:
            print(name)
    return 0


def _cmd_config(args: argparse.Namespace) -> int:
    from openjepa.config import available_configs, load_config, to_yaml

    if args.action is None:
        print(f"openjepa config: error: choose an action: {CONFIG_ACTIONS}", file=sys.stderr)
        return 2
    if args.action == "list":
        print("\n".join(available_configs()))
        return 0
    from openjepa.methods import check_config

    cfg = load_config(args.name, args.overrides)
    check_config(cfg)  # the method, encoder and dataset are registered and fit together
    print(to_yaml(cfg), end="")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="openjepa", description="Joint-Embedding Predictive Architectures: "
                "pretrain, evaluate and inspect JEPA models.", epilog=EPILOG)
    p.add_argument("--version", action="version", version=f"openjepa {_version()}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    t = sub.add_parser("train", help="pretrain a model (no config: the 2-minute CPU quickstart)", epilog=EPILOG)
    t.add_argument("config", nargs="?", help="YAML config file or shipped name (e.g. ijepa/fashion_mnist)")
    t.add_argument("overrides", nargs="*", default=[], metavar="key=value", help="config overrides")
    _add_resume_args(t)
    t.set_defaults(func=_cmd_train)

    sw = sub.add_parser("sweep", help="train a grid of runs (key=v1,v2 ...) and tabulate and plot their probes",
                        epilog=EPILOG + " An override with several comma-separated values (outside brackets) is an "
                        "axis: mask.target_scale=[0.1,0.15],[0.15,0.2] model.encoder=vit_pico,vit_nano.",
                        description="Run every point of the grid as a normal run directory under --out (resumable: "
                        "finished points are kept, interrupted ones resume), then write sweep.md/.csv/.json and "
                        "sweep.png: probe accuracy against each swept setting, FLOPs per step and wall time.")
    sw.add_argument("config", nargs="?", help="YAML config file or shipped name (default: the quickstart)")
    sw.add_argument("overrides", nargs="*", default=[], metavar="key=value[,value...]",
                    help="fixed settings and swept axes")
    sw.add_argument("--out", default=None, metavar="DIR", help="sweep folder (default: runs/sweep_<config name>)")
    sw.add_argument("--jobs", type=_int_at_least(1), default=1, metavar="N",
                    help="points trained at once, the CPU threads shared between them (default: 1)")
    sw.add_argument("--devices", default=None, metavar="LIST",
                    help="GPUs for the jobs, one each in turn, e.g. cuda:0,cuda:1 (with --jobs 2)")
    sw.add_argument("--no-progress", action="store_true", help="no progress bar")
    sw.set_defaults(func=_cmd_sweep)

    _add_model_commands(sub)


    _add_eval_commands(sub)

    _add_world_model_commands(sub)

    m = sub.add_parser("models", help="list registered models")
    m.add_argument("pattern", nargs="?", default="*", help="shell-style filter, e.g. 'vit_*'")
    m.add_argument("--params", action="store_true", help="also print parameter counts")
    m.set_defaults(func=_cmd_models)

    c = sub.add_parser("config", help="show a resolved config, or list the shipped ones", epilog=EPILOG,
                       usage="%(prog)s [-h] {show [NAME] [key=value ...] | list}")
    c.add_argument("action", nargs="?", choices=["show", "list"], default=None,
                   help="show NAME: print the resolved config; list: names")
    c.add_argument("name", nargs="?", default=None, help="config file or shipped name (default: the quickstart)")
    c.add_argument("overrides", nargs="*", default=[], metavar="key=value")
    c.set_defaults(func=_cmd_config)
    return p


def _add_resume_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in run_dir (refused "
                   "when the config changes what is trained: model, data, method, optimizer, ...)")
    p.add_argument("--allow-config-change", action="store_true",
                   help="with --resume: continue even though settings that change what is trained differ")


def _add_eval_commands(sub: argparse._SubParsersAction) -> None:
    """``openjepa eval``, ``openjepa embed`` and ``openjepa report``."""
    from openjepa.config.schema import EVAL_PROTOCOLS

    e = sub.add_parser("eval", help="frozen-feature evaluation (linear/attentive probe, kNN, low-shot, RankMe) "
                       "of a run, checkpoint or any loadable model", epilog=EPILOG + " Features are cached in RUN/features and reused.")
    e.add_argument("checkpoint", help="run directory, checkpoint file (.pt) or any loadable model (a Hugging Face "
                   "folder, an official checkpoint, an openjepa convert folder; give it data.*=... to probe on)")
    e.add_argument("overrides", nargs="*", default=[], metavar="key=value",
                   help="e.g. eval.knn_k=10 eval.baselines=false; video: data.num_clips=2 data.num_views=3 "
                   "eval.frame_encoder=IMAGE_RUN (the frame-averaged image baseline)")
    e.add_argument("--device", default=None, help="device for evaluation (default: the run's setting)")
    e.add_argument("--protocol", nargs="+", default=None, metavar="{" + ",".join(EVAL_PROTOCOLS) + "}",
                   help="protocols to run, several allowed (default: eval.protocols, i.e. linear knn; on video "
                   "data eval.video_protocols, i.e. attentive linear knn): "
                   "linear = lr x wd grid of linear heads on pooled features; attentive = V-JEPA cross-attention "
                   "probe on patch tokens (eval.attentive_*); knn = temperature-weighted cosine kNN (eval.knn_k); "
                   "lowshot = linear probe on k-shot and 1%%/10%% label subsets, mean ± std over seeds "
                   "(eval.lowshot_*)")
    e.set_defaults(func=_cmd_eval)

    b = sub.add_parser("embed", help="export the features of image or video files (.npy or .safetensors)",
                       description="Encode image files with a run's encoder, preprocessed as the run's evaluation "
                       "does, and save the features with the ordered file list (FILE.files.txt) beside them. A video "
                       "model embeds video files instead: the run's evaluation clips and views (data.frames_per_clip, "
                       "frame_step or fps, num_clips, num_views, model.img_size), pooled over tokens and views or "
                       "per token and view, with those clip settings in FILE.meta.json.")
    b.add_argument("checkpoint", help="run directory, checkpoint file (.pt) or any loadable model")
    b.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, or folders (searched recursively); for a "
                   "video model: video files, folders of them, or .csv/.txt lists of 'path [label]' lines")
    b.add_argument("--out", required=True, metavar="FILE", help="output: FILE.npy or FILE.safetensors (key 'features')")
    b.add_argument("--batch-size", type=_int_at_least(1), default=None,
                   help="images (videos) per forward pass (default: the run's eval.batch_size, 256)")
    b.add_argument("--device", default=None, help="device (default: the run's setting)")
    b.add_argument("--encoder", choices=["target", "context"], default=None,
                   help="which encoder (default: the run's eval.encoder)")
    b.add_argument("--pool", choices=["mean", "none"], default="mean",
                   help="mean: pooled (N, D) features; none: patch tokens (N, T, D), video with several views "
                   "(N, V, T, D) (default: mean)")
    b.add_argument("--on-error", choices=["skip", "raise"], default="skip",
                   help="unreadable image or video: skip it and list it in FILE.skipped.txt, or stop (default: skip)")
    b.add_argument("--num-workers", type=_int_at_least(0), default=0,
                   help="image-decoding worker processes (default: 0)")
    b.add_argument("--no-progress", action="store_true", help="no progress bar")
    b.set_defaults(func=_cmd_embed)

    r = sub.add_parser("report", help="write a run's HTML report (curves, masks, embeddings, probes)",
                       description="Write one self-contained HTML page (RUN_DIR/report.html by default) with the "
                       "training curves, mask examples, a 2-D map of test embeddings, nearest-neighbour retrieval, "
                       "the probe tables and the config. Sections whose inputs are missing say so.")
    r.add_argument("run_dir", help="run directory, or any loadable model (a Hugging Face folder, an official "
                   "checkpoint, an openjepa convert folder) to map on the data its data.*=... overrides name")
    r.add_argument("overrides", nargs="*", default=[], metavar="key=value", help="e.g. data.root=/data/images")
    r.add_argument("--out", default=None, metavar="FILE", help="output file (default: RUN_DIR/report.html)")
    r.add_argument("--device", default=None, help="device for the embeddings (default: the run's setting)")
    r.add_argument("--max-images", type=_int_at_least(0), default=1000,
                   help="cap on images encoded per split (0: all; default: 1000)")
    r.add_argument("--no-tsne", action="store_true", help="PCA map only (skip t-SNE)")
    r.add_argument("--no-progress", action="store_true", help="no progress bars (default: the run's train.progress)")
    r.set_defaults(func=_cmd_report)


def _add_model_commands(sub: argparse._SubParsersAction) -> None:
    """``openjepa finetune``, ``openjepa convert`` and ``openjepa export``: models beyond pretraining."""
    f = sub.add_parser("finetune", help="fine-tune a pretrained encoder with a classification head",
                       description="Full fine-tuning: the source's encoder (an openjepa run, checkpoint or "
                       "encoder.safetensors) and a linear or attentive head train together on the source's labelled "
                       "data (or data.* overrides), with layer-wise lr decay, label smoothing and stochastic depth "
                       "(the recipe in finetune/base); checkpoints, --resume and evaluation work as for train. "
                       "The run goes to SOURCE_finetune unless run_dir=... is given.", epilog=EPILOG)
    f.add_argument("source", help="pretrained run directory, checkpoint (.pt) or encoder.safetensors")
    f.add_argument("config", nargs="?", help="recipe YAML or shipped name (default: finetune/base)")
    f.add_argument("overrides", nargs="*", default=[], metavar="key=value", help="e.g. finetune.head=attentive")
    _add_resume_args(f)
    f.set_defaults(func=_cmd_finetune)

    cv = sub.add_parser("convert", help="convert any loadable model into an openjepa model folder",
                        description="Load SOURCE (an openjepa run, checkpoint or encoder.safetensors, a Hugging Face "
                        "IJepaModel / VJEPA2Model folder, or an official I-JEPA / V-JEPA / V-JEPA 2 checkpoint) and "
                        "write OUT/encoder.safetensors with the config that rebuilds it, for load_pretrained, embed, "
                        "eval and finetune.")
    cv.add_argument("source", help="model to convert")
    cv.add_argument("--out", required=True, metavar="DIR", help="output folder")
    cv.add_argument("--encoder", choices=["target", "context"], default="target",
                    help="the target (EMA) or context encoder of a source that has both (default: target)")
    cv.set_defaults(func=_cmd_convert)

    ex = sub.add_parser("export", help="export an encoder as safetensors, ONNX or a Hugging Face folder",
                        description="safetensors: OUT/encoder.safetensors; onnx: OUT/encoder.onnx (dynamic batch "
                        "axis, checked in onnxruntime); hf: OUT/config.json + model.safetensors loadable with "
                        "transformers' IJepaModel (image ViTs) or VJEPA2Model (V-JEPA 2 architectures).")
    ex.add_argument("source", help="run directory, checkpoint, encoder.safetensors or any convertible model")
    ex.add_argument("--format", required=True, choices=["safetensors", "onnx", "hf"], help="output format")
    ex.add_argument("--out", required=True, metavar="DIR", help="output folder")
    ex.add_argument("--encoder", choices=["target", "context"], default="target", help="which encoder (default: target)")
    ex.set_defaults(func=_cmd_export)


def _add_world_model_commands(sub: argparse._SubParsersAction) -> None:
    """``openjepa plan`` and ``openjepa collect``."""
    pl = sub.add_parser("plan", help="plan to goals with a trained world model (CEM/MPPI in latent space)",
                        description="Run model-predictive control with a world-model run (train.method=acjepa): "
                        "each episode starts in one room and must reach a goal shown as an image; prints the success "
                        "rate, mean steps to goal and planning seconds per step and per episode, beside a random-action "
                        "planner and the same planner on the true simulator (the oracle). Saves OUT/results.json and "
                        "OUT/trajectories.png.", epilog=EPILOG + " Planner settings: plan.planner=cem|mppi, "
                        "plan.horizon, plan.samples, plan.iterations, plan.replan_every, plan.max_steps, plan.seed.")
    pl.add_argument("checkpoint", help="world-model run directory or checkpoint file (.pt)")
    pl.add_argument("overrides", nargs="*", default=[], metavar="key=value",
                    help="e.g. plan.planner=mppi plan.samples=200")
    pl.add_argument("--env", default=None, help="environment (default: the one the run was trained on)")
    pl.add_argument("--episodes", type=_int_at_least(1), default=None,
                    help="episodes to plan (default: plan.episodes, 100)")
    pl.add_argument("--device", default=None, help="device (default: the run's setting)")
    pl.add_argument("--out", default=None, metavar="DIR", help="output folder (default: RUN/plan)")
    pl.add_argument("--no-baselines", action="store_true", help="skip the random-action and oracle planners")
    pl.add_argument("--no-progress", action="store_true", help="no progress bar")
    pl.set_defaults(func=_cmd_plan)
    d = sub.add_parser("collect", help="record trajectories of a planning environment (world-model data)",
                       description="Run a batched environment under an exploration policy and write the "
                       "episodes (images, actions, states) to OUT as safetensors shards plus meta.json, "
                       "the input of the trajectory dataset. Environments: two_rooms, point_mass.")
    d.add_argument("env", metavar="ENV", help="environment name (two_rooms, point_mass)")
    d.add_argument("--episodes", type=int, required=True, metavar="N", help="number of episodes")
    d.add_argument("--steps", type=int, required=True, metavar="T", help="actions per episode (T+1 frames each)")
    d.add_argument("--out", required=True, metavar="DIR", help="output folder (new, empty, or a previous collection)")
    d.add_argument("--seed", type=int, default=0, help="random seed; same seed, same files (default: 0)")
    d.add_argument("--policy", choices=["random", "noisy"], default="noisy",
                   help="random: i.i.d. actions; noisy: a correlated random walk that travels far (default: noisy)")
    d.add_argument("--img-size", type=int, default=None, metavar="PX",
                   help="rendered image size in pixels (default: the environment's, 64)")
    d.add_argument("--shard-size", type=int, default=100, metavar="K", help="episodes per shard file (default: 100)")
    d.add_argument("--no-progress", action="store_true", help="no progress bar")
    d.set_defaults(func=_cmd_collect)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # "openjepa plan RUN --episodes 5 plan.planner=mppi": overrides after an option come back as extras.
    if extra and hasattr(args, "overrides") and all("=" in e and not e.startswith("-") for e in extra):
        args.overrides = [*args.overrides, *extra]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command is None:
        parser.print_help()
        return 0
    # "openjepa train key=value" without a file: the first positional is an override, not a config.
    if getattr(args, "config", None) and "=" in args.config:
        args.overrides, args.config = [args.config, *args.overrides], None
    if getattr(args, "name", None) and "=" in args.name:
        args.overrides, args.name = [args.name, *args.overrides], None
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except user_errors() as e:  # evaluated only when something was raised: no torch import up front
        print(f"openjepa {args.command}: error: {one_line(e)}", file=sys.stderr)
        return 2


def user_errors() -> tuple[type[BaseException], ...]:
    """Errors caused by the user's input (a config, a data folder, a checkpoint file), whose
    messages name the key or file: reported in one line with exit code 2, never as a traceback."""
    from openjepa.errors import USER_ERRORS

    return USER_ERRORS


def one_line(e: BaseException) -> str:
    """``e``'s message on one line. An error re-raised from a DataLoader worker carries the worker's
    traceback in its message; its last line holds the original message."""
    text = str(e).strip()
    if "Original Traceback" in text:
        last = text.splitlines()[-1]
        text = last.split(": ", 1)[1] if ": " in last else last
    return " ".join(text.split())


if __name__ == "__main__":
    sys.exit(main())
