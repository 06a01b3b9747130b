"""Building blocks shared by encoders and predictors."""

from openjepa.layers.attention import Attention
from openjepa.layers.mlp import Block, Mlp, drop_path, key_padding_mask
from openjepa.layers.norm import GlobalBatchNorm1d
from openjepa.layers.patch_embed import PatchEmbed
from openjepa.layers.pos_embed import interpolate_pos_embed, sincos_embed

__all__ = ["Attention", "Block", "GlobalBatchNorm1d", "Mlp", "PatchEmbed", "drop_path", "interpolate_pos_embed",
           "key_padding_mask", "sincos_embed"]
