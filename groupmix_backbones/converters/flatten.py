"""Official FLatten Transformer checkpoints (LeapLabTHU/FLatten-Transformer) -> ours.

Dropped keys: Swin's ``relative_position_index`` and ``attn_mask`` buffers (rebuilt for every map
size) and FLatten-PVT's final ``norm``, which the official forward never applies.
"""
from .core import OfficialFormat, Rules, register_format

WB = r'(weight|bias)'

# keys inside one block of any host
BLOCK = Rules(
    (rf'(norm1|norm2)\.{WB}', r'\1.\2'),
    (rf'attn\.(q|kv|qkv|proj|sr|norm|dwc)\.{WB}', r'attn.\1.\2'),
    (r'attn\.scale', 'attn.focus_scale'),
    (r'attn\.positional_encoding', 'attn.key_pos_embed'),
    (r'attn\.relative_position_bias_table', 'attn.rel_pos_table'),
    (r'attn\.relative_position_index|attn_mask', None),
    (rf'mlp\.(fc1|fc2)\.{WB}', r'mlp.\1.\2'),
    (rf'mlp\.dwconv\.dwconv\.{WB}', r'mlp.dwconv.\1'),
    (rf'(qkv|proj)\.{WB}', r'\1.\2'),  # CSWin blocks
    (rf'attns\.(\d)\.get_v\.{WB}', r'branches.\1.lepe.\2'),
    (rf'attns\.(\d)\.dwc\.{WB}', r'branches.\1.dwc.\2'),
    (r'attns\.(\d)\.scale', r'branches.\1.focus_scale'),
    (r'attns\.(\d)\.positional_encoding', r'branches.\1.key_pos_embed'),
)


def _embed(stage):
    """Our name of the patch embedding that starts official stage ``stage`` (1-based)."""
    return 'backbone.patch_embed' if int(stage) == 1 else f'backbone.stages.{int(stage) - 1}.downsample'


def _block(stage, index, rest):
    new = BLOCK(rest)
    return None if new is None else f'backbone.stages.{stage}.blocks.{index}.{new}'


_PVT = (
    (rf'patch_embed(\d)\.(proj|norm)\.{WB}', lambda m: f'{_embed(m[1])}.{m[2]}.{m[3]}'),
    (r'block(\d)\.(\d+)\.(.+)', lambda m: _block(int(m[1]) - 1, m[2], m[3])),
    (rf'head\.{WB}', r'head.fc.\1'),
)

RULES = {
    'FLattenPVT': Rules(
        *_PVT,
        (r'pos_embed(\d)', lambda m: f'{_embed(m[1])}.pos_embed'),
        (rf'norm\.{WB}', None),  # built but unused by the official FLatten-PVT forward
    ),
    'FLattenPVTv2': Rules(
        *_PVT,
        (rf'norm(\d)\.{WB}', lambda m: f'backbone.stages.{int(m[1]) - 1}.norm.{m[2]}'),
    ),
    'FLattenSwin': Rules(
        (rf'patch_embed\.(proj|norm)\.{WB}', r'backbone.patch_embed.\1.\2'),
        (r'layers\.(\d)\.blocks\.(\d+)\.(.+)', lambda m: _block(m[1], m[2], m[3])),
        (rf'layers\.(\d)\.downsample\.(norm|reduction)\.{WB}',
         lambda m: f'backbone.stages.{int(m[1]) + 1}.downsample.{m[2]}.{m[3]}'),
        (rf'norm\.{WB}', r'backbone.out_norm.\1'),
        (rf'head\.{WB}', r'head.fc.\1'),
    ),
    'FLattenCSWin': Rules(
        (rf'stage1_conv_embed\.0\.{WB}', r'backbone.patch_embed.proj.\1'),
        (rf'stage1_conv_embed\.2\.{WB}', r'backbone.patch_embed.norm.\1'),
        (r'stage(\d)\.(\d+)\.(.+)', lambda m: _block(int(m[1]) - 1, m[2], m[3])),
        (rf'merge(\d)\.conv\.{WB}', r'backbone.stages.\1.downsample.proj.\2'),
        (rf'merge(\d)\.norm\.{WB}', r'backbone.stages.\1.downsample.norm.\2'),
        (rf'norm\.{WB}', r'backbone.out_norm.\1'),
        (rf'head\.{WB}', r'head.fc.\1'),
    ),
}


def detect(state):
    """Which FLatten host an official state dict belongs to (None: not FLatten)."""
    if 'stage1_conv_embed.0.weight' in state:
        return 'FLattenCSWin'
    if 'patch_embed.proj.weight' in state and any(k.startswith('layers.') for k in state):
        return 'FLattenSwin'
    if 'pos_embed1' in state:
        return 'FLattenPVT'
    if 'patch_embed1.proj.weight' in state:
        return 'FLattenPVTv2'
    return None


FLATTEN = register_format(OfficialFormat(
    family='FLatten Transformer', repo='LeapLabTHU/FLatten-Transformer',
    script='tools/model_converters/flatten2mmpretrain.py', detect=detect, rules=RULES,
    expected='stage1_conv_embed.* (CSWin), patch_embed.* with layers.* (Swin), pos_embed1 (PVT) '
    'or patch_embed1.* (PVTv2)'))
