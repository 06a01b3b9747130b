"""Action-conditioned, frame-block-causal predictor: the latent dynamics model of a JEPA world model.

Given per-frame encoder tokens z_0..z_{T-1} and actions a_0..a_{T-1} (a_t is taken after frame t), the
predictor outputs, at every frame t, a prediction of z_{t+1} that sees only frames and actions <= t.
Attention is causal at frame granularity: all tokens of frame t attend to each other and to every token of
earlier frames, so one teacher-forced pass trains all T next-frame predictions at once.

Two ways to inject the action (``cond``):

- ``"token"``: V-JEPA 2-AC (Assran et al. 2025, arXiv 2506.09985, Sec. 3): each frame block is
  [action token, frame tokens] and the action is read through block-causal attention.
- ``"adaln"``: adaptive LayerNorm as in DiT (Peebles & Xie 2023, "Scalable Diffusion Models with
  Transformers", adaLN-Zero) and LeWorldModel: each block's LayerNorms are shifted/scaled, and its residual
  branches gated, by an MLP of the action embedding of that frame. Modulation starts at zero (identity blocks),
  so at initialisation the output does not depend on the actions at all.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import Tensor, nn

from openjepa.layers import Block, drop_path
from openjepa.layers.init import init_weights, rescale_residuals
from openjepa.layers.pos_embed import sincos_1d

CONDS = ("adaln", "token")


class ACBlock(Block):
    """Pre-norm block with optional adaLN-Zero modulation by a per-frame condition (B, T, dim)."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, adaln: bool = False,
                 drop_path: float = 0.0):
        super().__init__(dim, num_heads, mlp_ratio, drop_path=drop_path)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim)) if adaln else None

    def zero_modulation(self) -> None:
        """adaLN-Zero: shift = scale = gate = 0, so the block starts as the identity."""
        if self.adaLN_modulation is not None:
            nn.init.zeros_(self.adaLN_modulation[1].weight)
            nn.init.zeros_(self.adaLN_modulation[1].bias)

    def forward(self, x: Tensor, attn_mask: Optional[Tensor] = None, cond: Optional[Tensor] = None) -> Tensor:
        """x: (B, T*n, dim) frame-major tokens; cond: (B, T, dim), one condition per frame (adaLN only)."""
        return self._run(x, cond, lambda h: self.attn(h, attn_mask))

    def step(self, x: Tensor, cond: Optional[Tensor], past: Optional[tuple[Tensor, Tensor]]
             ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """One new frame block x (B, n, dim) (cond (B, 1, dim)) attending to the cached keys/values of the earlier
        frames; returns the block output and the extended cache (see Attention.forward_with_past)."""
        cache: list[tuple[Tensor, Tensor]] = []

        def attend(h: Tensor) -> Tensor:
            out, kv = self.attn.forward_with_past(h, past)
            cache.append(kv)
            return out

        return self._run(x, cond, attend), cache[0]

    def _run(self, x: Tensor, cond: Optional[Tensor], attend: Callable[[Tensor], Tensor]) -> Tensor:
        if (cond is None) != (self.adaLN_modulation is None):
            raise ValueError("an adaLN ACBlock needs cond of shape (B, T, dim); a plain one takes cond=None")
        if cond is None:  # plain pre-norm block, as layers.Block
            x = x + drop_path(attend(self.norm1(x)), self.drop_path, self.training)
            return x + drop_path(self.mlp(self.norm2(x)), self.drop_path, self.training)
        B, L, D = x.shape
        T = cond.shape[1]
        if L % T:
            raise ValueError(f"{L} tokens do not split into {T} frames")
        mods = self.adaLN_modulation(cond)[:, :, None, :].chunk(6, dim=-1)  # 6 x (B, T, 1, D)
        shift1, scale1, gate1, shift2, scale2, gate2 = mods

        def per_frame(h: Tensor) -> Tensor:
            return h.reshape(B, T, L // T, D)  # (B, T*n, D) -> (B, T, n, D)

        h = (per_frame(self.norm1(x)) * (1 + scale1) + shift1).reshape(B, L, D)
        h = (gate1 * per_frame(attend(h))).reshape(B, L, D)
        x = x + drop_path(h, self.drop_path, self.training)
        h = (per_frame(self.norm2(x)) * (1 + scale2) + shift2).reshape(B, L, D)
        h = (gate2 * per_frame(self.mlp(h))).reshape(B, L, D)
        return x + drop_path(h, self.drop_path, self.training)


class ACPredictor(nn.Module):
    """Predicts z_{t+1} from z_{<=t} and a_{<=t}; see the module docstring for the two ``cond`` modes.

    Temporal position: fixed sin-cos code of the frame index inside the (at most ``max_frames``) window, added to
    every token of the frame (and to its action token). With ``tokens_per_frame > 1`` a learned (N, dim) spatial
    embedding tells the patch tokens apart.
    """

    def __init__(self, embed_dim: int, action_dim: int, tokens_per_frame: int = 1, dim: int = 192, depth: int = 4,
                 num_heads: int = 4, mlp_ratio: float = 4.0, max_frames: int = 32, cond: str = "adaln",
                 drop_path: float = 0.0, init_std: float = 0.02):
        super().__init__()
        if cond not in CONDS:
            raise ValueError(f"cond must be one of {CONDS}, got {cond!r}")
        if min(embed_dim, action_dim, tokens_per_frame, max_frames) < 1:
            raise ValueError("embed_dim, action_dim, tokens_per_frame and max_frames must be >= 1")
        self.embed_dim, self.action_dim, self.tokens_per_frame = embed_dim, action_dim, tokens_per_frame
        self.max_frames, self.cond = max_frames, cond
        self.frame_embed = nn.Linear(embed_dim, dim)
        if cond == "token":
            self.action_embed: nn.Module = nn.Linear(action_dim, dim)
        else:  # an MLP, as DiT embeds its conditioning before the per-block modulation
            self.action_embed = nn.Sequential(nn.Linear(action_dim, dim), nn.SiLU(), nn.Linear(dim, dim))
        # Fixed like the encoder's pos_embed; a Parameter so it sits in the state dict under a stable name.
        self.time_embed = nn.Parameter(sincos_1d(dim, torch.arange(max_frames)).float(), requires_grad=False)
        self.space_embed = nn.Parameter(torch.zeros(tokens_per_frame, dim)) if tokens_per_frame > 1 else None
        rates = [drop_path * i / max(depth - 1, 1) for i in range(depth)]
        self.blocks = nn.ModuleList(
            ACBlock(dim, num_heads, mlp_ratio, adaln=cond == "adaln", drop_path=rates[i]) for i in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.proj = nn.Linear(dim, embed_dim)
        init_weights(self, init_std)
        rescale_residuals(self.blocks)
        for blk in self.blocks:
            blk.zero_modulation()
        if self.space_embed is not None:
            nn.init.trunc_normal_(self.space_embed, std=init_std)
        self._masks: dict[tuple[int, torch.device], Optional[Tensor]] = {}

    @property
    def tokens_per_block(self) -> int:
        """Sequence positions per frame: the frame tokens, plus the action token in "token" mode."""
        return self.tokens_per_frame + (self.cond == "token")

    def no_weight_decay(self) -> set[str]:
        return {"time_embed"} | ({"space_embed"} if self.space_embed is not None else set())

    def block_causal_mask(self, T: int, device: torch.device) -> Optional[Tensor]:
        """(T*n, T*n) bool, True where the query's frame >= the key's frame; None (no mask) when T == 1. Cached."""
        key = (T, torch.device(device))
        if key not in self._masks:
            frame = torch.arange(T * self.tokens_per_block, device=device) // self.tokens_per_block  # (T*n,)
            self._masks[key] = None if T == 1 else frame[:, None] >= frame[None, :]
        return self._masks[key]

    def _check(self, z: Tensor, actions: Tensor, name: str = "forward") -> None:
        N, D, A = self.tokens_per_frame, self.embed_dim, self.action_dim
        if z.ndim != 4 or z.shape[2:] != (N, D) or z.shape[1] < 1:
            raise ValueError(f"{name}: expected z of shape (B, T, N={N}, D={D}) with T >= 1, got {tuple(z.shape)}")
        if actions.ndim != 3 or actions.shape[0] != z.shape[0]:
            raise ValueError(f"{name}: expected actions of shape (B={z.shape[0]}, T, A={A}), "
                             f"got {tuple(actions.shape)}")
        if actions.shape[2] != A:
            raise ValueError(f"{name}: actions have dim {actions.shape[2]}, the predictor expects action_dim={A}")

    def _embed(self, z: Tensor, actions: Tensor, t0: int = 0) -> tuple[Tensor, Optional[Tensor]]:
        """(B, T, N, D), (B, T, A) -> tokens (B, T, n, dim) at window positions t0..t0+T-1, and the adaLN
        condition (B, T, dim) (None in "token" mode, where the action is the first token of each block)."""
        T = z.shape[1]
        time = self.time_embed[t0:t0 + T, None, :].to(z.dtype)  # (T, 1, dim)
        x = self.frame_embed(z) + time  # (B, T, N, dim)
        if self.space_embed is not None:
            x = x + self.space_embed.to(x.dtype)
        a = self.action_embed(actions.to(x.dtype))  # (B, T, dim)
        if self.cond == "token":
            return torch.cat([a[:, :, None] + time, x], dim=2), None  # (B, T, 1+N, dim): [action, frame tokens]
        return x, a

    def forward(self, z: Tensor, actions: Tensor) -> Tensor:
        """z: (B, T, N, D) per-frame encoder tokens; actions: (B, T, A), actions[:, t] taken after frame t.

        Returns (B, T, N, D): out[:, t] predicts z[:, t+1] from z[:, :t+1] and actions[:, :t+1] only.
        """
        self._check(z, actions)
        B, T, N, _ = z.shape
        if actions.shape[1] != T:
            raise ValueError(f"forward: expected actions of shape (B, T={T}, A={self.action_dim}) "
                             f"aligned with z, got {tuple(actions.shape)}")
        if T > self.max_frames:
            raise ValueError(f"forward: {T} frames exceed max_frames={self.max_frames}; "
                             "use rollout (sliding window) or a shorter clip")
        x, cond = self._embed(z, actions)  # (B, T, n, dim)
        n = x.shape[2]
        x = x.reshape(B, T * n, -1)  # (B, T*n, dim), frame-major
        mask = self.block_causal_mask(T, z.device)
        for blk in self.blocks:
            x = blk(x, mask, cond)
        x = x.reshape(B, T, n, -1)[:, :, n - N:]  # (B, T, N, dim): drop the action tokens
        return self.proj(self.norm(x))

    def _step(self, z_t: Tensor, a_t: Tensor, pos: int, cache: list[Optional[tuple[Tensor, Tensor]]]
              ) -> tuple[Tensor, list[Optional[tuple[Tensor, Tensor]]]]:
        """Frame z_t (B, N, D) with action a_t (B, A) at window position ``pos``, attending to the cached frames
        before it -> its final-block frame-token states (B, N, dim) and the per-block key/value caches extended by
        this frame."""
        x, cond = self._embed(z_t[:, None], a_t[:, None], pos)  # (B, 1, n, dim)
        B, _, n, dim = x.shape
        x = x.reshape(B, n, dim)  # (B, n, dim): one frame block
        new_cache: list[Optional[tuple[Tensor, Tensor]]] = []
        for blk, past in zip(self.blocks, cache):
            x, kv = blk.step(x, cond, past)
            new_cache.append(kv)
        return x[:, n - self.tokens_per_frame:], new_cache  # (B, N, dim): drop the action token

    def rollout(self, z: Tensor, actions: Tensor) -> Tensor:
        """Autoregressive imagination: each prediction is fed back as the next input frame.

        z: (B, T0, N, D) observed frames; actions: (B, T0 - 1 + H, A), action t follows frame t (the first T0 - 1
        are the known past actions). Returns (B, H, N, D): predicted z_{T0}, ..., z_{T0+H-1}. Every prediction
        equals ``forward(window, window_actions)[:, -1]`` on the last min(T0 + h, max_frames) frames, re-indexed
        from time 0 (a sliding window).

        Cost: frame-block causality makes earlier frames' keys/values independent of later frames, so they are
        cached per block and each step runs the trunk on one new frame block only: T0 + H - 1 block-steps in all
        while the window is not full. Once it slides, every frame's time position changes and the cache is rebuilt,
        max_frames block-steps per prediction (as recomputing the window). Batched over B; differentiable (wrap
        in torch.no_grad() for planning).
        """
        self._check(z, actions, "rollout")
        T0 = z.shape[1]
        H = actions.shape[1] - T0 + 1
        if H < 1:
            raise ValueError(f"rollout: expected actions of shape (B, T0 - 1 + H, A) with T0={T0} and H >= 1, "
                             f"got {tuple(actions.shape)}")
        frames = z[:, -self.max_frames:]  # (B, W, N, D), the window; frames[:, i] is frame first + i
        first = T0 - frames.shape[1]
        cache: list[Optional[tuple[Tensor, Tensor]]] = [None] * len(self.blocks)
        cached, preds = 0, []  # cached: leading window frames already in the cache
        for _ in range(H):
            for i in range(cached, frames.shape[1]):
                hidden, cache = self._step(frames[:, i], actions[:, first + i], i, cache)  # (B, N, dim)
            cached = frames.shape[1]
            nxt = self.proj(self.norm(hidden))  # (B, N, D), only the newest frame goes through the head
            preds.append(nxt)
            frames = torch.cat([frames, nxt[:, None]], dim=1)  # (B, W + 1, N, D)
            if frames.shape[1] > self.max_frames:  # slide: time positions shift, so the cache is stale
                frames, first = frames[:, 1:], first + 1
                cache, cached = [None] * len(self.blocks), 0
        return torch.stack(preds, dim=1)  # (B, H, N, D)
