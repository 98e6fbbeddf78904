"""Official SG-Former checkpoints (OliverRensu/SG-Former) -> ours.

Blocks of stages with ``sr_ratio > 1`` alternate as the official builds them: even blocks are
hybrid-scale (official ``q1 kv1 sr norm q2 kv2``), odd blocks significance-guided (``q kv1 kv2 f1
f2 f3``); the block index tells which rules apply.
"""
from .core import OfficialFormat, Rules, register_format

WB = r'(weight|bias)'

_COMMON = (
    (rf'(norm1|norm2)\.{WB}', r'\1.\2'),
    (rf'mlp\.(fc1|fc2)\.{WB}', r'mlp.\1.\2'),
    (rf'mlp\.dwconv\.dwconv\.{WB}', r'mlp.dwconv.\1'),
    (rf'attn\.(lepe_linear|lepe_conv|proj)\.{WB}', r'attn.\1.\2'),
    (rf'attn\.(q|kv)\.{WB}', r'attn.\1.\2'),  # global attention (stage 4); guided q
)
HYBRID_BLOCK = Rules(
    *_COMMON,
    (rf'attn\.q1\.{WB}', r'attn.global_q.\1'),
    (rf'attn\.kv1\.{WB}', r'attn.global_kv.\1'),
    (rf'attn\.sr\.{WB}', r'attn.reduce.\1'),
    (rf'attn\.norm\.{WB}', r'attn.reduce_norm.\1'),
    (rf'attn\.q2\.{WB}', r'attn.local_q.\1'),
    (rf'attn\.kv2\.{WB}', r'attn.local_kv.\1'),
)
GUIDED_BLOCK = Rules(
    *_COMMON,
    (rf'attn\.(kv1|kv2)\.{WB}', r'attn.\1.\2'),
    (rf'attn\.f([123])\.{WB}', lambda m: f'attn.aggregators.{int(m[1]) - 1}.{m[2]}'),
)


def _block(stage, index, rest):
    rules = GUIDED_BLOCK if int(index) % 2 else HYBRID_BLOCK
    return f'backbone.stages.{int(stage) - 1}.blocks.{index}.{rules(rest)}'


RULES = Rules(
    (r'pos_embed', 'backbone.patch_embed.pos_embed.weight'),
    (r'patch_embed1\.conv\.([024])\.c\.weight', r'backbone.patch_embed.convs.\1.conv.weight'),
    (rf'patch_embed1\.conv\.([024])\.bn\.{WB}', r'backbone.patch_embed.convs.\1.norm.\2'),
    (rf'patch_embed1\.norm\.{WB}', r'backbone.patch_embed.norm.\1'),
    (r'patch_embed([234])\.(conv[123])\.c\.weight',
     lambda m: f'backbone.stages.{int(m[1]) - 1}.downsample.{m[2]}.conv.weight'),
    (rf'patch_embed([234])\.(conv[123])\.bn\.{WB}',
     lambda m: f'backbone.stages.{int(m[1]) - 1}.downsample.{m[2]}.norm.{m[3]}'),
    (r'block([1234])\.(\d+)\.(.+)', lambda m: _block(m[1], m[2], m[3])),
    (rf'norm([1234])\.{WB}', lambda m: f'backbone.stages.{int(m[1]) - 1}.norm.{m[2]}'),
    (rf'head\.{WB}', r'head.fc.\1'),
)


def detect(state):
    return 'SGFormer' if 'patch_embed1.conv.0.c.weight' in state else None


SGFORMER = register_format(OfficialFormat(
    family='SG-Former', repo='OliverRensu/SG-Former',
    script='tools/model_converters/sgformer2mmpretrain.py', detect=detect,
    rules={'SGFormer': RULES}, expected='patch_embed1.conv.0.c.weight (the convolutional stem), '
    'patch_embed2-4.conv1-3.*, block1-4.*, norm1-4.*, pos_embed'))
