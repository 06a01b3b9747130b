"""Building blocks shared by encoders and predictors."""

from openjepa.layers.attention import Attention
from openjepa.layers.mlp import Block, Mlp, drop_path, key_padding_mask
from openjepa.layers.norm import GlobalBatchNorm1d
from openjepa.layers.patch_embed import PatchEmbed
from openjepa.layers.pos_embed import interpolate_pos_embed, sincos_embed
from openjepa.layers.rope import apply_rope, full_grid_tables, grid_positions, rope_tables

__all__ = ["Attention", "Block", "GlobalBatchNorm1d", "Mlp", "PatchEmbed", "apply_rope", "drop_path",
           "full_grid_tables", "grid_positions", "interpolate_pos_embed", "key_padding_mask", "rope_tables",
           "sincos_embed"]
