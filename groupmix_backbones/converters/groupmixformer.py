"""Official GroupMixFormer checkpoints (AILab-CVC/GroupMixFormer) -> ours."""
from .core import OfficialFormat, Rules, register_format

WB = r'(weight|bias)'
BN = r'(weight|bias|running_mean|running_var|num_batches_tracked)'
SEP = r'(?:conv1|pointwise_conv)'  # official SeparableConv2d: depthwise conv1, pointwise_conv


def _sep(name):
    return {'conv1': 'depthwise', 'pointwise_conv': 'pointwise'}[name]


BLOCK = Rules(
    (rf'cpe\.proj\.{WB}', r'cpe.\1'),
    (rf'(norm1|norm2)\.{WB}', r'\1.\2'),
    (rf'mlp\.(fc1|fc2)\.{WB}', r'mlp.\1.\2'),
    (rf'att\.(qkv|proj)\.{WB}', r'attn.\1.\2'),
    (rf'att\.aggregator\.norm(\d)\.{BN}', r'attn.group_aggs.\1.norm.\2'),
    (rf'att\.aggregator\.agg([123])\.({SEP})\.weight',
     lambda m: f'attn.group_aggs.{m[1]}.conv.{_sep(m[2])}.weight'),
    (rf'att\.aggregator\.agg0\.conv\.({SEP})\.weight',
     lambda m: f'attn.local_agg.conv.{_sep(m[1])}.weight'),
    (rf'att\.aggregator\.agg0\.norm\.{WB}', r'attn.local_agg.norm.\1'),
    (rf'att\.crpe\.conv_list\.(\d)\.{WB}', r'attn.crpe.convs.\1.\2'),
)

RULES = Rules(
    (rf'conv_stem\.proj([12])\.{WB}', lambda m: f'backbone.stem.{int(m[1]) - 1}.conv.{m[2]}'),
    (rf'conv_stem\.norm([12])\.{BN}', lambda m: f'backbone.stem.{int(m[1]) - 1}.bn.{m[2]}'),
    (rf'patch_embed_layers\.(\d)\.proj\.({SEP})\.weight',
     lambda m: f'backbone.stages.{m[1]}.downsample.proj.{_sep(m[2])}.weight'),
    (rf'patch_embed_layers\.(\d)\.norm\.{BN}', r'backbone.stages.\1.downsample.norm.\2'),
    (r'groupmixformer_backbone\.(\d)\.gma_stage\.(\d+)\.(.+)',
     lambda m: f'backbone.stages.{m[1]}.blocks.{m[2]}.{BLOCK(m[3])}'),
    (rf'norm4\.{BN}', r'backbone.out_norm.\1'),
    (rf'head\.{WB}', r'head.fc.\1'),
)


def detect(state):
    return 'GroupMixFormer' if 'conv_stem.proj1.weight' in state else None


GROUPMIXFORMER = register_format(OfficialFormat(
    family='GroupMixFormer', repo='AILab-CVC/GroupMixFormer',
    script='tools/model_converters/groupmixformer2mmpretrain.py', detect=detect,
    rules={'GroupMixFormer': RULES}, expected='conv_stem.*, patch_embed_layers.*, '
    'groupmixformer_backbone.*'))
