"""What the report computes from the run's model and data: mask examples, frozen features,
their 2-D projections and nearest neighbours. Figures are drawn elsewhere (``plots.py``)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from openjepa.config.schema import Config, MaskConfig
from openjepa.data import build_dataset, dataset_info
from openjepa.eval.features import extract_features
from openjepa.masks import MaskGroups, build_mask_sampler, group_configs, mask_image
from openjepa.masks.viz import group_mask_images
from openjepa.methods import JEPAMethod, build_encoder

log = logging.getLogger(__name__)


@dataclass
class SplitFeatures:
    """Pooled features of the first ``N`` items of one split, with the dataset to fetch their images."""

    features: Tensor  # (N, D) float32
    labels: Tensor  # (N,) int64, -1 where unlabelled
    dataset: Dataset


def to_display(x: Tensor, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """A normalised image (C, H, W), or a clip (C, T, H, W) whose first frame is shown (the first view
    of evaluation views (V, C, T, H, W)), -> (H, W) grey or (H, W, 3) RGB floats in [0, 1] for matplotlib."""
    if x.ndim == 5:
        x = x[0]
    if x.ndim == 4:
        x = x[:, 0]
    c = x.shape[0]
    m = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)
    img = (x.float() * s + m).clamp(0, 1)
    return img[0].numpy() if c == 1 else img[:3].permute(1, 2, 0).numpy()


def clip_to_display(x: Tensor, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """A normalised clip (C, F, H, W) (the first view of evaluation views (V, C, F, H, W); an image
    (C, H, W) is one frame) -> (F, H, W, 3) RGB floats in [0, 1], grey repeated to RGB."""
    if x.ndim == 5:
        x = x[0]
    if x.ndim == 3:
        x = x[:, None]
    c = x.shape[0]
    m = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1, 1)
    clip = (x.float() * s + m).clamp(0, 1)  # (C, F, H, W)
    rgb = clip.expand(3, *clip.shape[1:]) if c == 1 else clip[:3]
    return rgb.permute(1, 2, 3, 0).numpy()  # (C, F, H, W) -> (F, H, W, 3)


def token_grid(cfg: Config) -> tuple[int, ...]:
    """The encoder's (T, H, W) token grid, from a shape-only (meta device) build of it."""
    with torch.device("meta"):
        return tuple(build_encoder(cfg).grid)


@dataclass
class ClipExamples:
    """What the filmstrip shows: sample clips and the masks of every mask group over them."""

    clips: list[np.ndarray]  # clip i: (F, H, W, 3) floats in [0, 1]
    maps: list[list[np.ndarray]]  # maps[i][g]: (T, h, w) token map of clip i in group g (see mask_image)
    labels: list[str]  # clip i's class name ("" when unlabelled)
    groups: list[str]  # what each mask group is (its sampler settings)
    blocks: list[int]  # target sets per group (1 when merged: V-JEPA)
    tubelet: int  # frames per token


def group_description(cfg: MaskConfig) -> str:
    """One line on a mask group's settings, e.g. ``8 blocks of scale 0.15, merged``."""
    if cfg.sampler == "random":
        return f"random {cfg.ratio:g} of the tokens" + (" (tubes)" if cfg.tube else "")
    lo, hi = cfg.target_scale
    text = f"{cfg.num_targets} block{'s' if cfg.num_targets != 1 else ''} of scale " + (
        f"{lo:g}" if lo == hi else f"{lo:g}-{hi:g}")
    t_lo, t_hi = cfg.temporal_scale
    if (t_lo, t_hi) != (1.0, 1.0):
        text += f", {t_lo:g}-{t_hi:g} of the frames"
    return text + (", merged" if cfg.merge_targets else "")


def mask_examples(cfg: Config, n: int = 6, clips: int = 3) -> tuple[list[np.ndarray], list[np.ndarray]] | ClipExamples:
    """The masks the run's sampler draws at step 0 over the first training items (eval view, no
    augmentation). Image runs with one mask group: the first ``n`` images and their token maps (H, W)
    ``(images, maps)``; video runs (or several mask groups): the first ``clips`` items as a
    :class:`ClipExamples`, every group's (T, H, W) map over every frame."""
    info = dataset_info(cfg.data)
    if info.kind != "video" and not cfg.mask.groups:
        return _image_examples(cfg, n)
    return clip_examples(cfg, clips)


def _image_examples(cfg: Config, n: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    ds = build_dataset(cfg.data, "train", cfg.model.img_size, seed=cfg.seed, train=False)
    n = min(n, len(ds))  # type: ignore[arg-type]
    info = dataset_info(cfg.data)
    grid = token_grid(cfg)
    masks = build_mask_sampler(cfg.mask, grid, cfg.seed)(n, 0)
    images = [to_display(ds[i][0], info.mean, info.std) for i in range(n)]
    maps = [mask_image(masks, grid, i)[0].numpy() for i in range(n)]
    return images, maps


def _class_name(y: int, names: Sequence[str]) -> str:
    return "" if y < 0 else names[y] if y < len(names) else str(y)


def clip_examples(cfg: Config, n: int = 3) -> ClipExamples:
    """The first ``n`` training clips (eval view), denormalised with the dataset's mean and std, and
    each mask group's token map from the run's sampler (``build_mask_sampler(cfg.mask, grid, cfg.seed)``
    for a batch of ``n`` at step 0)."""
    ds = build_dataset(cfg.data, "train", cfg.model.img_size, seed=cfg.seed, train=False)
    n = min(n, len(ds))  # type: ignore[arg-type]
    info = dataset_info(cfg.data)
    grid = token_grid(cfg)
    masks = build_mask_sampler(cfg.mask, grid, cfg.seed)(n, 0)
    groups = tuple(masks) if isinstance(masks, MaskGroups) else (masks,)
    items = [ds[i] for i in range(n)]
    names = info.class_names
    return ClipExamples(
        clips=[clip_to_display(x, info.mean, info.std) for x, _ in items],
        maps=[[m.numpy() for m in group_mask_images(masks, grid, i)] for i in range(n)],
        labels=[_class_name(int(y), names) for _, y in items],
        groups=[group_description(c) for c in group_configs(cfg.mask)],
        blocks=[int(g.targets.idx.shape[1]) for g in groups],
        tubelet=int(cfg.model.tubelet_size) if info.kind == "video" else 1)


def split_features(method: JEPAMethod, cfg: Config, split: str, device: torch.device, max_images: int,
                   progress: bool = False) -> SplitFeatures:
    """Pooled ``cfg.eval.encoder`` features of the first ``max_images`` items of ``split`` (eval view),
    ``cfg.eval.batch_size`` images per forward pass under ``cfg.eval.precision``."""
    ds = build_dataset(cfg.data, split, cfg.model.img_size, seed=cfg.seed, train=False)
    loader = DataLoader(ds, batch_size=cfg.eval.batch_size, shuffle=False, num_workers=0)
    feats, labels = extract_features(lambda x: method.encode(x, cfg.eval.encoder), loader, device, max_images,
                                     progress, precision=cfg.eval.precision, desc=f"report: {split} features")
    return SplitFeatures(feats, labels, ds)


def pca_2d(x: Tensor) -> tuple[np.ndarray, tuple[float, float]]:
    """The first two principal components of ``x`` (N, D) and the fraction of variance each explains."""
    x = x.double() - x.double().mean(0)
    _, s, vh = torch.linalg.svd(x, full_matrices=False)
    xy = x @ vh[:2].T
    if xy.shape[1] < 2:  # D = 1: a line
        xy = torch.cat([xy, torch.zeros_like(xy)], dim=1)
    var = s.square()
    frac = (var / var.sum().clamp_min(1e-300)).tolist() + [0.0, 0.0]
    return xy.float().numpy(), (frac[0], frac[1])


def tsne_2d(x: Tensor, seed: int) -> np.ndarray | None:
    """A 2-D t-SNE of ``x`` (N, D); ``None`` when scikit-learn is missing or there are under 10 points."""
    try:
        from sklearn.manifold import TSNE
    except ImportError:
        log.info("report: scikit-learn is not installed; the embedding map shows PCA only")
        return None
    n = x.shape[0]
    if n < 10:
        return None
    perplexity = float(min(30, (n - 1) // 3))
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x.double().numpy())


def nearest_neighbours(queries: Tensor, gallery: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """Top-``k`` cosine similarities and gallery indices for each query: ``(sims (Q, k), idx (Q, k))``."""
    q = torch.nn.functional.normalize(queries.float(), dim=1)
    g = torch.nn.functional.normalize(gallery.float(), dim=1)
    return (q @ g.T).topk(min(k, g.shape[0]), dim=1)
