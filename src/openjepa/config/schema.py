"""The configuration schema: the single source of truth for every setting.

Each field has a one-line doc in the comment beside it. The defaults are the quickstart
(a tiny ViT pretrained with I-JEPA on the built-in ``shapes`` dataset in about two minutes on a
laptop CPU); YAML files in ``openjepa/configs/`` hold only the differences from these defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, Dict, List, Optional


def choice(default: str, *others: str) -> Any:
    """A string setting with a fixed set of values (``default`` first); :func:`choices` reads them back."""
    return field(default=default, metadata={"choices": (default, *others)})


def choices(section: type, name: str) -> tuple[str, ...]:
    """The valid values of ``section.name`` (a :func:`choice` field)."""
    return next(f.metadata["choices"] for f in fields(section) if f.name == name)


def choice_fields(cfg: Any) -> list[tuple[str, Any, tuple[str, ...]]]:
    """``(key, value, valid values)`` of every :func:`choice` setting of a config instance."""
    out = []
    for top in fields(cfg):
        section = getattr(cfg, top.name)
        if is_dataclass(section):
            out += [(f"{top.name}.{f.name}", getattr(section, f.name), f.metadata["choices"])
                    for f in fields(section) if "choices" in f.metadata]
    return out


@dataclass
class ModelConfig:
    encoder: str = "vit_pico"  # registered encoder name (`openjepa models` lists them)
    img_size: int = 32  # input height and width in pixels
    in_chans: int = 3  # input channels (set from the dataset when `data.name` knows it)
    patch_size: int = 4  # patch side in pixels
    num_frames: int = 1  # frames per clip (1 = images)
    tubelet_size: int = 1  # frames per token (video only)
    drop_path: float = 0.0  # stochastic-depth rate of the encoder
    predictor_embed_dim: int = 64  # predictor width
    predictor_depth: int = 2  # predictor depth
    predictor_heads: int = 2  # predictor attention heads
    proj_dim: int = 128  # LeJEPA projector output width
    proj_hidden: int = 512  # LeJEPA projector hidden width
    dtype_params: str = "float32"  # parameter dtype (mixed precision is `train.precision`)
    pretrained: Optional[str] = None  # start pretraining from saved or released weights (run, .pt, encoder.safetensors, HF folder, official file): encoder, EMA teacher and predictor where present
    encoder_kwargs: Dict[str, Any] = field(default_factory=dict)  # extra encoder constructor arguments (e.g. embed_dim, depth, num_heads, pos of a converted model)


@dataclass
class MaskConfig:
    sampler: str = choice("multiblock", "random")  # multiblock | random
    num_targets: int = 4  # target blocks per sample (I-JEPA: 4)
    target_scale: List[float] = field(default_factory=lambda: [0.15, 0.2])  # fraction of the grid per target block
    target_aspect: List[float] = field(default_factory=lambda: [0.75, 1.5])  # aspect ratio (h/w) range of target blocks
    num_context: int = 1  # context blocks per sample (I-JEPA: 1)
    context_scale: List[float] = field(default_factory=lambda: [0.85, 1.0])  # fraction of the grid per context block
    context_aspect: List[float] = field(default_factory=lambda: [1.0, 1.0])  # aspect ratio range of context blocks
    temporal_scale: List[float] = field(default_factory=lambda: [1.0, 1.0])  # fraction of frames a block spans (video)
    min_keep: int = 4  # fewest context tokens a sample may keep
    allow_overlap: bool = False  # let context overlap targets (I-JEPA: False)
    ratio: float = 0.75  # random sampler: fraction of tokens that are targets
    tube: bool = False  # random sampler on video: mask the same spatial tokens in every frame (VideoMAE)
    official_compat: bool = False  # reproduce the official collator (one block size per batch, truncation, no last row/col)
    merge_targets: bool = False  # predict the union of the target blocks as one set (V-JEPA) instead of each block
    groups: List[Any] = field(default_factory=list)  # mask groups, each {key: value} overriding the settings above; one predictor pass per group (V-JEPA: 8 blocks of 0.15 and 2 of 0.7)


@dataclass
class DataConfig:
    name: str = "shapes"  # shapes | digits | fashion_mnist | folder | trajectories | moving_shapes | video_folder
    root: Optional[str] = None  # data directory (folder: the images; fashion_mnist: the IDX files; trajectories: `openjepa collect --out`; video_folder: the videos or a `path label` list file)
    batch_size: int = 64  # global batch size (summed over ranks)
    num_workers: int = 0  # DataLoader worker processes
    train_size: int = 20000  # shapes: generated training images
    test_size: int = 4000  # shapes: generated test images
    val_fraction: float = 0.2  # folder/digits without a test split: fraction held out for evaluation
    train_transforms: List[Any] = field(default_factory=list)  # torchvision v2 transforms: [{name: RandomHorizontalFlip, p: 0.5}, ...]
    eval_transforms: List[Any] = field(default_factory=list)  # transforms for evaluation (after resize)
    mean: Optional[List[float]] = None  # per-channel mean for normalisation (None: the dataset's own)
    std: Optional[List[float]] = None  # per-channel std for normalisation (None: the dataset's own)
    on_error: str = choice("skip", "raise")  # unreadable image or video in a folder: skip (and list it) | raise
    download: bool = False  # fashion_mnist: download the IDX files when they are not found locally
    num_frames: int = 4  # trajectories: frames per training sub-trajectory
    frameskip: int = 1  # trajectories: env steps between served frames (a model step; its action is frameskip env actions)
    frames_per_clip: int = 16  # video: frames per clip (V-JEPA: 16); also sets model.num_frames
    frame_step: int = 4  # video: take every frame_step-th frame of the file (V-JEPA: 4); ignored when fps > 0
    fps: float = 0.0  # video: sample at this frame rate instead (frame step = round(file fps / fps) per video); 0 = off
    num_clips: int = 1  # video evaluation: K evenly spaced clips per video
    num_views: int = 1  # video evaluation: S spatial crops per clip, along the longer side
    short_videos: str = choice("pad", "loop", "skip")  # video shorter than a clip: pad (repeat the last frame) | loop (wrap around) | skip (next video, listed as skipped)
    frames_as_images: bool = False  # video datasets: serve every frame of every clip as an image (C, H, W) with the clip's label (an image JEPA on the same frames: the eval.frame_encoder baseline)
    images: Dict[str, Any] = field(default_factory=dict)  # video runs: a joint image stream (V-JEPA 2), given as overrides of data.* for its dataset, e.g. {name: folder, root: /imagenet, batch_size: 72} or {frames_as_images: true}; every step also trains on a batch of it (images as one-frame clips); empty = off
    image_weight: float = 0.25  # share of the loss the joint image batch carries: (1 - w) * clips + w * images (the official code's img_rank_ratio: 1/4 of the ranks train on images)


@dataclass
class OptimConfig:
    lr: float = 1e-3  # peak learning rate
    start_lr: float = 1e-4  # learning rate at step 0 (warm-up starts here)
    final_lr: float = 1e-5  # learning rate at the last step
    warmup_steps: int = 100  # linear warm-up steps (use warmup_epochs instead to count in epochs)
    warmup_epochs: float = 0.0  # warm-up in epochs (converted to steps; overrides warmup_steps when > 0)
    schedule: str = choice("cosine", "wsd", "constant")  # cosine | wsd (warmup-stable-decay) | constant
    decay_fraction: float = 0.2  # wsd: fraction of training spent decaying
    weight_decay: float = 0.04  # weight decay at step 0 (I-JEPA: 0.04)
    final_weight_decay: float = 0.4  # weight decay at the last step (cosine; I-JEPA: 0.4)
    betas: List[float] = field(default_factory=lambda: [0.9, 0.999])  # AdamW betas
    eps: float = 1e-8  # AdamW epsilon
    clip_grad: float = 0.0  # gradient-norm clip (0 = off)
    ema: List[float] = field(default_factory=lambda: [0.99, 1.0])  # EMA momentum of the target encoder: start, end (I-JEPA: 0.996, 1.0)


@dataclass
class TrainConfig:
    method: str = "ijepa"  # registered method name
    target: str = choice("ema", "online")  # ijepa targets: ema (EMA teacher, stop-gradient) | online (the encoder itself; needs sigreg.weight > 0)
    loss: str = choice("smooth_l1", "l1", "l2")  # l1 | l2 | smooth_l1 (distance between prediction and layer-normed target)
    steps: int = 300  # optimizer steps (0: use epochs)
    epochs: float = 6.0  # training length in epochs when steps is 0
    precision: str = choice("auto", "fp32", "bf16", "fp16")  # auto (bf16 on GPU, fp32 on CPU) | fp32 | bf16 | fp16
    parallel: str = choice("ddp", "fsdp")  # under torchrun with > 1 process: ddp (replicated) | fsdp (FSDP2 fully_shard, sharded)
    compile: bool = False  # torch.compile every transformer / ResNet block (regional, dynamic shapes)
    log_every: int = 10  # steps between metric lines (JSONL and TensorBoard)
    ckpt_every: int = 500  # steps between checkpoints (0: only at the end)
    keep_last: int = 2  # checkpoints kept on disk
    progress: bool = True  # show a progress bar
    spike_factor: float = 0.0  # skip a step whose loss exceeds this multiple of the recent mean (0 = off)
    spike_window: int = 50  # recent (taken) steps whose mean loss the spike guard compares against


EVAL_PROTOCOLS = ("linear", "attentive", "knn", "lowshot")  # eval.protocols / --protocol choices


@dataclass
class EvalConfig:
    at_end: bool = True  # evaluate (probe table) when training ends
    encoder: str = choice("target", "context")  # which encoder gives features: target | context
    knn_k: int = 20  # neighbours in the kNN classifier
    knn_temperature: float = 0.07  # temperature of the kNN vote weights
    probe_epochs: int = 100  # epochs of the linear probe
    probe_batch_size: int = 1024  # minibatch of the linear probe
    max_train_samples: int = 5000  # cap on training images used by the probes (0: all)
    max_test_samples: int = 2000  # cap on test images used by the probes (0: all)
    baselines: bool = True  # also probe raw pixels and a random-init encoder
    report: bool = True  # write the HTML run report (report.html) when training ends
    protocols: List[str] = field(default_factory=lambda: ["linear", "knn"])  # linear | attentive | knn | lowshot
    video_protocols: List[str] = field(default_factory=lambda: ["attentive", "linear", "knn"])  # protocols on video data (clips), instead of eval.protocols: the V-JEPA attentive probe over all clip tokens first
    frame_encoder: Optional[str] = None  # video data: also probe this image encoder (run dir, checkpoint, encoder.safetensors, any load_pretrained source) applied per frame, tokens averaged over frames
    cache: bool = True  # reuse extracted features cached in run_dir/features
    attentive_epochs: int = 10  # epochs of the attentive probe (V-JEPA: 20)
    attentive_batch_size: int = 256  # minibatch of the attentive probe
    attentive_lrs: List[float] = field(default_factory=lambda: [1e-3, 3e-3, 1e-2])  # attentive probe lrs, best on held-out train
    attentive_wd: float = 1e-3  # AdamW weight decay of the attentive probe (V-JEPA ImageNet: 1e-3)
    attentive_heads: int = 4  # attentive probe heads (lowered to divide the token dim)
    attentive_queries: int = 1  # learned query tokens of the probe (V-JEPA: 1)
    lowshot_shots: List[int] = field(default_factory=lambda: [1, 5])  # low-shot: labelled images per class
    lowshot_fractions: List[float] = field(default_factory=lambda: [0.01, 0.1])  # low-shot: label fractions (per class, >= 1)
    lowshot_seeds: int = 3  # low-shot: label subsets drawn per setting (reported as mean ± std)
    lowshot_lr: float = 1e-2  # low-shot probe lr (fixed: too few labels to hold out)
    lowshot_wd: float = 1e-3  # low-shot linear probe weight decay (fixed, as lowshot_lr)
    batch_size: int = 256  # images per forward pass when extracting frozen features
    precision: str = choice("auto", "fp32", "bf16")  # feature extraction: auto (bf16 on GPU, fp32 elsewhere) | fp32 | bf16


@dataclass
class SIGRegConfig:
    weight: float = 0.0  # lambda, the SIGReg trade-off (LeJEPA: 0.05); 0 = off (I-JEPA with its EMA teacher)
    combine: str = choice("convex", "add")  # convex: (1-lambda)*prediction + lambda*SIGReg (the paper) | add: prediction + lambda*SIGReg
    input: str = choice("tokens", "pooled")  # masked JEPA (train.target=online): tokens (every target token) | pooled (one per image)
    statistic: str = choice("per_view", "all_views")  # per_view: mean over views of each view's statistic (the paper) | all_views: one over all
    slices: int = 256  # random 1-D projections (directions) per step
    knots: int = 17  # trapezoid-rule knots on [0, t_max]
    t_max: float = 3.0  # upper end of the integration range of the characteristic functions


@dataclass
class ViewsConfig:
    num_global: int = 2  # global views per image (LeJEPA: 2)
    num_local: int = 6  # local views per image (LeJEPA: 6)
    global_size: int = 0  # global view side in pixels (0: model.img_size)
    local_size: int = 0  # local view side in pixels (0: 7/16 of model.img_size, rounded to the patch size; 98 of 224)
    global_scale: List[float] = field(default_factory=lambda: [0.3, 1.0])  # RandomResizedCrop area range, global
    local_scale: List[float] = field(default_factory=lambda: [0.05, 0.3])  # RandomResizedCrop area range, local


@dataclass
class MonitorConfig:
    every: int = 50  # steps between monitor metrics (online probe accuracy, RankMe, spread); 0 = off
    probe: bool = True  # train an online linear probe on detached features when the data has labels
    probe_lr: float = 1e-3  # Adam learning rate of the online probe
    buffer: int = 1024  # pooled features kept for RankMe and spread (the most recent ones)
    collapse_ratio: float = 0.2  # warn when spread or centred rank falls below this fraction of its best value


@dataclass
class WorldConfig:
    env: str = ""  # environment of the trajectories (filled from data.root's meta.json): two_rooms | point_mass
    env_kwargs: Dict[str, Any] = field(default_factory=dict)  # its constructor settings (filled from meta.json)
    action_dim: int = 0  # predictor action width = env action dim x data.frameskip (filled from meta.json)
    encoder: str = choice("train", "frozen")  # train: the encoder learns from scratch, SIGReg guards it (LeWorldModel) | frozen: a pretrained encoder (V-JEPA 2-AC)
    pretrained: Optional[str] = None  # frozen: an openjepa checkpoint, run dir or encoder.safetensors whose encoder is loaded
    latent: str = choice("pooled", "patch")  # pooled: one token per frame (mean of the patch tokens, projected) | patch: every patch token
    latent_dim: int = 64  # width of the latent the predictor works in (a linear projection of the encoder tokens)
    pred_dim: int = 64  # action-conditioned predictor width
    pred_depth: int = 2  # action-conditioned predictor depth
    pred_heads: int = 4  # action-conditioned predictor heads
    cond: str = choice("adaln", "token")  # action conditioning: adaln (adaptive LayerNorm, DiT/LeWorldModel) | token (interleaved action tokens, V-JEPA 2-AC)
    rollout_steps: int = 2  # frames predicted autoregressively from the first one for the rollout loss (0 = teacher forcing only)
    rollout_weight: float = 1.0  # weight of the multi-step rollout loss beside the teacher-forced loss
    probe_frames: int = 4000  # position probe: training frames (from the train episodes)


@dataclass
class PlanConfig:
    planner: str = choice("cem", "mppi", "random")  # cem | mppi | random (random bounded actions, the baseline)
    horizon: int = 8  # model steps planned ahead (each frameskip env steps)
    samples: int = 300  # candidate action sequences per iteration
    iterations: int = 5  # optimisation iterations per planning call
    elite_frac: float = 0.1  # CEM: fraction of samples kept as elites
    temperature: float = 0.005  # MPPI: softmax temperature on the energies (mean squared latent distances)
    replan_every: int = 1  # model steps executed before planning again (receding horizon)
    energy: str = choice("min", "final", "sum")  # min: closest approach to the goal latent over the horizon | final: the last step's | sum over the steps
    hold: bool = True  # search one action per model step, held for its frameskip env steps (else all frameskip actions)
    max_steps: int = 200  # env steps before an episode counts as failed
    episodes: int = 100  # planning episodes (openjepa plan --episodes)
    episodes_at_end: int = 20  # planning episodes evaluated when a world-model run ends (0 = none)
    batch: int = 0  # episodes planned at once (0: all)
    seed: int = 0  # seeds start/goal sampling and the planner


@dataclass
class FinetuneConfig:
    source: Optional[str] = None  # pretrained encoder (openjepa run dir, checkpoint or encoder.safetensors); None: random init
    head: str = choice("linear", "attentive")  # linear: LayerNorm + Linear on pooled tokens | attentive: V-JEPA's cross-attention pooler
    layer_decay: float = 0.75  # layer-wise lr decay (BEiT): ViT block i of L trains at lr * layer_decay ** (L - i); 1 = off
    label_smoothing: float = 0.1  # cross-entropy label smoothing
    compare_frozen: bool = True  # also probe the source encoder frozen (linear) on the same splits, for comparison


@dataclass
class Config:
    run_dir: str = "runs/quickstart"  # where checkpoints, logs and results go
    seed: int = 0  # seeds model init, data order, masks and augmentations
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    model: ModelConfig = field(default_factory=ModelConfig)
    mask: MaskConfig = field(default_factory=MaskConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    sigreg: SIGRegConfig = field(default_factory=SIGRegConfig)
    views: ViewsConfig = field(default_factory=ViewsConfig)
    monitor: MonitorConfig = field(default_factory=MonitorConfig)
    world: WorldConfig = field(default_factory=WorldConfig)
    plan: PlanConfig = field(default_factory=PlanConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
