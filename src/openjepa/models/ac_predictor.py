"""Action-conditioned, frame-block-causal predictor: the latent dynamics model of a JEPA world model.

Given per-frame encoder tokens z_0..z_{T-1} and actions a_0..a_{T-1} (a_t is taken after frame t), the
predictor outputs, at every frame t, a prediction of z_{t+1} that sees only frames and actions <= t.
Attention is causal at frame granularity: all tokens of frame t attend to each other and to every token of
earlier frames, so one teacher-forced pass trains all T next-frame predictions at once.

Two ways to inject the action (``cond``):

- ``"token"``: V-JEPA 2-AC (Assran et al. 2025, arXiv 2506.09985, Sec. 3): each frame block is
  [action token, frame tokens] and the action is read through block-causal attention. Optional further
  conditioning tokens per frame: the proprioceptive state s_t (``state_dim``) and the camera extrinsics e_t
  (``extrinsics_dim``), each embedded by its own linear layer.
- ``"adaln"``: adaptive LayerNorm as in DiT (Peebles & Xie 2023, "Scalable Diffusion Models with
  Transformers", adaLN-Zero) and LeWorldModel: each block's LayerNorms are shifted/scaled, and its residual
  branches gated, by an MLP of the action embedding of that frame. Modulation starts at zero (identity blocks),
  so at initialisation the output does not depend on the actions at all.

Two ways to tell positions apart (``pos``):

- ``"sincos"``: a fixed sin-cos code of the frame index inside the window, added to every token of the frame
  (conditioning tokens included), and a learned (N, dim) spatial embedding of the frame tokens when N > 1.
- ``"rope"``: V-JEPA 2's 3-D rotary embedding (:mod:`openjepa.layers.rope`, with the official channel layout and
  its frequency quirk) in every attention layer, nothing added to the tokens.

The released V-JEPA 2-AC predictor (``facebookresearch/vjepa2``, ``src/models/ac_predictor.py``; built by
:func:`openjepa.models.vjepa.vjepa2_ac_predictor`) is ``cond="token"``, ``pos="rope"``, ``state_dim=7``:

* **Token order.** Frame block t is [a_t, s_t, (e_t,) z_t tokens in raster order of the (H, W) patch grid]; the
  blocks are concatenated frame-major, n = K + H*W tokens per block, K = 2 (3 with extrinsics) conditioning tokens.
* **Positions.** A frame token at grid cell (h, w) of frame t has RoPE coordinates (t, h, w * H / W) (the official
  code snaps both spatial axes to the grid height; an identity for square grids). The conditioning tokens of frame
  t are turned on the temporal channels only, by angle t; their height and width channels stay unrotated, which is
  exactly coordinates (t, 0, 0) (angle 0 is the identity), and is how they are built here.
* **Mask.** Boolean (T*n, T*n), True where the query's frame >= the key's frame: full attention inside a frame
  block (conditioning tokens included), causal across blocks (the official
  ``build_action_block_causal_attention_mask`` with the window = the clip).
* **Output.** The conditioning tokens are dropped after the last block; norm and projection back to the encoder
  width apply to the frame tokens. (The official world model then layer-normalises the prediction without
  parameters, ``normalize_reps``; that is the caller's step, as for the encoder's targets.)
"""

from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import Tensor, nn

from openjepa.layers import Block, drop_path, rope_tables
from openjepa.layers.init import init_weights, rescale_residuals
from openjepa.layers.pos_embed import sincos_1d
from openjepa.layers.rope import rope_axis_dim

CONDS = ("adaln", "token")
POS = ("rope", "sincos")
Rope = tuple[Tensor, Tensor]
KV = tuple[Tensor, Tensor]


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

    def forward(self, x: Tensor, attn_mask: Optional[Tensor] = None, cond: Optional[Tensor] = None,
                rope: Optional[Rope] = None) -> Tensor:
        """x: (B, T*n, dim) frame-major tokens; cond: (B, T, dim), one condition per frame (adaLN only);
        rope: (cos, sin) tables (T*n, R) of the tokens (``pos="rope"``), or None."""
        return self._run(x, cond, lambda h: self.attn(h, attn_mask, rope))

    def step(self, x: Tensor, cond: Optional[Tensor], past: Optional[KV], rope: Optional[Rope] = None
             ) -> tuple[Tensor, KV]:
        """One new frame block x (B, n, dim) (cond (B, 1, dim), rope tables (n, R)) attending to the cached
        keys/values of the earlier frames; returns the block output and the extended cache."""
        cache: list[KV] = []

        def attend(h: Tensor) -> Tensor:
            out, kv = self.attn.forward_with_past(h, past, rope)
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
    """Predicts z_{t+1} from z_{<=t} and a_{<=t} (and s_{<=t}, e_{<=t}); see the module docstring for the modes.

    ``pos="sincos"``: fixed sin-cos code of the frame index inside the (at most ``max_frames``) window, added to
    every token of the frame (and to its conditioning tokens); with ``tokens_per_frame > 1`` a learned (N, dim)
    spatial embedding tells the patch tokens apart. ``pos="rope"``: 3-D RoPE over (frame, row, column) of the
    frame's patch ``grid`` (H, W) (tokens_per_frame = H * W); no position parameters.

    ``state_dim`` / ``extrinsics_dim`` (``cond="token"`` only; 0 = none): a per-frame state token s_t and a camera
    extrinsics token e_t after the action token, so forward and rollout then take ``states`` / ``extrinsics``.
    """

    def __init__(self, embed_dim: int, action_dim: int, tokens_per_frame: int = 1, dim: int = 192, depth: int = 4,
                 num_heads: int = 4, mlp_ratio: float = 4.0, max_frames: int = 32, cond: str = "adaln",
                 drop_path: float = 0.0, init_std: float = 0.02, state_dim: int = 0, extrinsics_dim: int = 0,
                 pos: str = "sincos", grid: Optional[tuple[int, int]] = None):
        super().__init__()
        if cond not in CONDS:
            raise ValueError(f"cond must be one of {CONDS}, got {cond!r}")
        if pos not in POS:
            raise ValueError(f"pos must be one of {POS}, got {pos!r}")
        if min(embed_dim, action_dim, tokens_per_frame, max_frames) < 1 or min(state_dim, extrinsics_dim) < 0:
            raise ValueError("embed_dim, action_dim, tokens_per_frame and max_frames must be >= 1, "
                             "state_dim and extrinsics_dim >= 0")
        if cond != "token" and (state_dim or extrinsics_dim):
            raise ValueError("state_dim / extrinsics_dim add conditioning tokens: they need cond='token'")
        self.grid = self._grid(pos, grid, tokens_per_frame)
        if pos == "rope":
            rope_axis_dim(dim // num_heads)  # fails early on too narrow a head
        self.embed_dim, self.action_dim, self.tokens_per_frame = embed_dim, action_dim, tokens_per_frame
        self.state_dim, self.extrinsics_dim = state_dim, extrinsics_dim
        self.max_frames, self.cond, self.pos, self.head_dim = max_frames, cond, pos, dim // num_heads
        self.frame_embed = nn.Linear(embed_dim, dim)
        if cond == "token":
            self.action_embed: nn.Module = nn.Linear(action_dim, dim)
        else:  # an MLP, as DiT embeds its conditioning before the per-block modulation
            self.action_embed = nn.Sequential(nn.Linear(action_dim, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.state_embed = nn.Linear(state_dim, dim) if state_dim else None
        self.extrinsics_embed = nn.Linear(extrinsics_dim, dim) if extrinsics_dim else None
        if pos == "sincos":  # fixed like the encoder's pos_embed; a Parameter for a stable state-dict name
            self.time_embed = nn.Parameter(sincos_1d(dim, torch.arange(max_frames)).float(), requires_grad=False)
            self.space_embed = nn.Parameter(torch.zeros(tokens_per_frame, dim)) if tokens_per_frame > 1 else None
        else:
            self.time_embed, self.space_embed = None, None
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
        self._ropes: dict[torch.device, Rope] = {}

    @staticmethod
    def _grid(pos: str, grid: Optional[tuple[int, int]], tokens_per_frame: int) -> Optional[tuple[int, int]]:
        if pos == "sincos":
            if grid is not None:
                raise ValueError("grid (the frame's patch grid) is for pos='rope'; pos='sincos' takes "
                                 "tokens_per_frame only")
            return None
        if grid is None:
            if tokens_per_frame > 1:
                raise ValueError(f"pos='rope' needs grid=(H, W) with H * W = tokens_per_frame={tokens_per_frame}")
            return (1, 1)
        H, W = (int(g) for g in grid)
        if min(H, W) < 1 or H * W != tokens_per_frame:
            raise ValueError(f"grid={tuple(grid)} does not hold tokens_per_frame={tokens_per_frame} tokens")
        return (H, W)

    @property
    def cond_tokens(self) -> int:
        """Conditioning tokens per frame block: action (+ state, + extrinsics) in "token" mode; 0 in "adaln"."""
        if self.cond != "token":
            return 0
        return 1 + (self.state_embed is not None) + (self.extrinsics_embed is not None)

    @property
    def tokens_per_block(self) -> int:
        """Sequence positions per frame: the frame tokens plus the conditioning tokens."""
        return self.tokens_per_frame + self.cond_tokens

    def no_weight_decay(self) -> set[str]:
        return {name for name in ("time_embed", "space_embed") if getattr(self, name) is not None}

    def block_causal_mask(self, T: int, device: torch.device) -> Optional[Tensor]:
        """(T*n, T*n) bool, True where the query's frame >= the key's frame; None (no mask) when T == 1. Cached."""
        key = (T, torch.device(device))
        if key not in self._masks:
            frame = torch.arange(T * self.tokens_per_block, device=device) // self.tokens_per_block  # (T*n,)
            self._masks[key] = None if T == 1 else frame[:, None] >= frame[None, :]
        return self._masks[key]

    def block_positions(self, T: int, device: torch.device | str | None = None) -> Tensor:
        """RoPE coordinates (T*n, 3) float32 of T frame blocks: conditioning tokens (t, 0, 0), then the frame
        tokens (t, h, w * H / W) in raster order (module docstring)."""
        H, W = self.grid
        cell = torch.arange(H * W, device=device)
        spatial = torch.stack([cell // W, cell % W], dim=-1).float() * torch.tensor([1.0, H / W], device=device)
        block = torch.cat([torch.zeros(self.cond_tokens, 2, device=device), spatial])  # (n, 2): (h, w)
        t = torch.arange(T, device=device, dtype=torch.float32)[:, None, None].expand(T, len(block), 1)
        return torch.cat([t, block.expand(T, -1, -1)], dim=-1).reshape(T * len(block), 3)  # (T*n, 3)

    def rope(self, t0: int, T: int, device: torch.device) -> Optional[Rope]:
        """(cos, sin) tables (T*n, R) of the frame blocks at window positions t0..t0+T-1; None for sin-cos."""
        if self.pos != "rope":
            return None
        device = torch.device(device)
        if device not in self._ropes:
            self._ropes[device] = rope_tables(self.block_positions(self.max_frames, device), self.head_dim)
        n = self.tokens_per_block
        cos, sin = self._ropes[device]
        return cos[t0 * n:(t0 + T) * n], sin[t0 * n:(t0 + T) * n]

    def _check(self, z: Tensor, actions: Tensor, states: Optional[Tensor], extrinsics: Optional[Tensor],
               name: str = "forward") -> None:
        N, D, A = self.tokens_per_frame, self.embed_dim, self.action_dim
        if z.ndim != 4 or z.shape[2:] != (N, D) or z.shape[1] < 1:
            raise ValueError(f"{name}: expected z of shape (B, T, N={N}, D={D}) with T >= 1, got {tuple(z.shape)}")
        if actions.ndim != 3 or actions.shape[0] != z.shape[0]:
            raise ValueError(f"{name}: expected actions of shape (B={z.shape[0]}, T, A={A}), "
                             f"got {tuple(actions.shape)}")
        if actions.shape[2] != A:
            raise ValueError(f"{name}: actions have dim {actions.shape[2]}, the predictor expects action_dim={A}")
        for label, x, dim in (("states", states, self.state_dim), ("extrinsics", extrinsics, self.extrinsics_dim)):
            setting = "state_dim" if label == "states" else "extrinsics_dim"
            if (x is None) != (dim == 0):
                raise ValueError(f"{name}: {label} must be given exactly when {setting} > 0 (it is {dim})")
            if x is not None and (x.ndim != 3 or x.shape != (*actions.shape[:2], dim)):
                raise ValueError(f"{name}: expected {label} of shape (B, T, {setting}={dim}) aligned with the "
                                 f"actions {tuple(actions.shape)}, got {tuple(x.shape)}")

    def _embed(self, z: Tensor, actions: Tensor, states: Optional[Tensor], extrinsics: Optional[Tensor],
               t0: int = 0) -> tuple[Tensor, Optional[Tensor]]:
        """(B, T, N, D), (B, T, A) (+ (B, T, S), (B, T, E)) -> tokens (B, T, n, dim) at window positions
        t0..t0+T-1, and the adaLN condition (B, T, dim) (None in "token" mode, where the conditioning tokens lead
        each block: [action, state, extrinsics, frame tokens])."""
        T = z.shape[1]
        x = self.frame_embed(z)  # (B, T, N, dim)
        time = 0.0
        if self.time_embed is not None:
            time = self.time_embed[t0:t0 + T, None, :].to(z.dtype)  # (T, 1, dim)
            x = x + time
        if self.space_embed is not None:
            x = x + self.space_embed.to(x.dtype)
        a = self.action_embed(actions.to(x.dtype))  # (B, T, dim)
        if self.cond != "token":
            return x, a
        cond = [a]
        for embed, value in ((self.state_embed, states), (self.extrinsics_embed, extrinsics)):
            if embed is not None:
                cond.append(embed(value.to(x.dtype)))  # (B, T, dim)
        tokens = torch.stack(cond, dim=2) + time  # (B, T, K, dim)
        return torch.cat([tokens, x], dim=2), None  # (B, T, K+N, dim)

    def forward(self, z: Tensor, actions: Tensor, states: Optional[Tensor] = None,
                extrinsics: Optional[Tensor] = None) -> Tensor:
        """z: (B, T, N, D) per-frame encoder tokens; actions: (B, T, A), actions[:, t] taken after frame t;
        states (B, T, S) / extrinsics (B, T, E): the robot state / camera extrinsics at frame t, when configured.

        Returns (B, T, N, D): out[:, t] predicts z[:, t+1] from the inputs at frames <= t only.
        """
        self._check(z, actions, states, extrinsics)
        B, T, N, _ = z.shape
        if actions.shape[1] != T:
            raise ValueError(f"forward: expected actions of shape (B, T={T}, A={self.action_dim}) "
                             f"aligned with z, got {tuple(actions.shape)}")
        if T > self.max_frames:
            raise ValueError(f"forward: {T} frames exceed max_frames={self.max_frames}; "
                             "use rollout (sliding window) or a shorter clip")
        x, cond = self._embed(z, actions, states, extrinsics)  # (B, T, n, dim)
        n = x.shape[2]
        x = x.reshape(B, T * n, -1)  # (B, T*n, dim), frame-major
        mask = self.block_causal_mask(T, z.device)
        rope = self.rope(0, T, z.device)
        for blk in self.blocks:
            x = blk(x, mask, cond, rope)
        x = x.reshape(B, T, n, -1)[:, :, n - N:]  # (B, T, N, dim): drop the conditioning tokens
        return self.proj(self.norm(x))

    def _step(self, z_t: Tensor, cond_t: tuple[Tensor, Optional[Tensor], Optional[Tensor]], pos: int,
              cache: list[Optional[KV]]) -> tuple[Tensor, list[Optional[KV]]]:
        """Frame z_t (B, N, D) with its action, state, extrinsics ``cond_t`` ((B, A), (B, S) or None, (B, E) or
        None) at window position ``pos``, attending to the cached frames before it -> its final-block frame-token
        states (B, N, dim) and the per-block key/value caches extended by this frame."""
        a_t, s_t, e_t = (None if c is None else c[:, None] for c in cond_t)
        x, cond = self._embed(z_t[:, None], a_t, s_t, e_t, pos)  # (B, 1, n, dim)
        B, _, n, dim = x.shape
        x = x.reshape(B, n, dim)  # (B, n, dim): one frame block
        rope = self.rope(pos, 1, z_t.device)
        new_cache: list[Optional[KV]] = []
        for blk, past in zip(self.blocks, cache):
            x, kv = blk.step(x, cond, past, rope)
            new_cache.append(kv)
        return x[:, n - self.tokens_per_frame:], new_cache  # (B, N, dim): drop the conditioning tokens

    def rollout(self, z: Tensor, actions: Tensor, states: Optional[Tensor] = None,
                extrinsics: Optional[Tensor] = None) -> Tensor:
        """Autoregressive imagination: each prediction is fed back as the next input frame.

        z: (B, T0, N, D) observed frames; actions: (B, T0 - 1 + H, A), action t follows frame t (the first T0 - 1
        are the known past actions); states / extrinsics, when configured, aligned with the actions (the state at
        every input frame, imagined ones included: the caller supplies them, e.g. integrated from the actions as
        the official V-JEPA 2-AC planner does). Returns (B, H, N, D): predicted z_{T0}, ..., z_{T0+H-1}. Every
        prediction equals ``forward(window, window_actions)[:, -1]`` on the last min(T0 + h, max_frames) frames,
        re-indexed from time 0 (a sliding window).

        Cost: frame-block causality makes earlier frames' keys/values independent of later frames, so they are
        cached per block and each step runs the trunk on one new frame block only: T0 + H - 1 block-steps in all
        while the window is not full. Once it slides, every frame's time position changes and the cache is rebuilt,
        max_frames block-steps per prediction (as recomputing the window). Batched over B; differentiable (wrap
        in torch.no_grad() for planning).
        """
        self._check(z, actions, states, extrinsics, "rollout")
        T0 = z.shape[1]
        H = actions.shape[1] - T0 + 1
        if H < 1:
            raise ValueError(f"rollout: expected actions of shape (B, T0 - 1 + H, A) with T0={T0} and H >= 1, "
                             f"got {tuple(actions.shape)}")
        frames = z[:, -self.max_frames:]  # (B, W, N, D), the window; frames[:, i] is frame first + i
        first = T0 - frames.shape[1]
        cache: list[Optional[KV]] = [None] * len(self.blocks)
        cached, preds = 0, []  # cached: leading window frames already in the cache
        for _ in range(H):
            for i in range(cached, frames.shape[1]):
                t = first + i
                cond_t = tuple(None if c is None else c[:, t] for c in (actions, states, extrinsics))
                hidden, cache = self._step(frames[:, i], cond_t, i, cache)  # (B, N, dim)
            cached = frames.shape[1]
            nxt = self.proj(self.norm(hidden))  # (B, N, D), only the newest frame goes through the head
            preds.append(nxt)
            frames = torch.cat([frames, nxt[:, None]], dim=1)  # (B, W + 1, N, D)
            if frames.shape[1] > self.max_frames:  # slide: time positions shift, so the cache is stale
                frames, first = frames[:, 1:], first + 1
                cache, cached = [None] * len(self.blocks), 0
        return torch.stack(preds, dim=1)  # (B, H, N, D)
