"""tools/visualization/visualize_backbone.py and groupmix_backbones.visualization: the FLatten
attention maps are the module's own attention (checked against its forward), GroupMixFormer's are
drawn on a photo, and the drawn PNGs have the image's size, show the map and mark the query where
asked."""
import matplotlib.cbook
import numpy as np
import pytest
import torch
import torch.nn as nn
from PIL import Image

from groupmix_backbones.models import (FLattenCSWin, FLattenPVT, FLattenPVTv2, FLattenSwin,
                                       GroupMixFormer)
from groupmix_backbones.models.flatten.common import ProjectedLinearAttention
from groupmix_backbones.models.flatten.cswin import CSWinLinearAttention, CSWinStripeAttention
from groupmix_backbones.models.layers import ShiftedWindowAttention, SpatialReductionAttention
from groupmix_backbones.safe_checkpoint import UnsafeCheckpointError
from groupmix_backbones.models.loading import CheckpointMismatchError
from groupmix_backbones.visualization import core
from groupmix_backbones.visualization.attention import (attention_row, module_attention_map,
                                                        record_attention)
from conftest import load_tool

tool = load_tool('tools/visualization/visualize_backbone.py')

IMAGE_HW = (72, 88)  # not multiples of 32: padded maps
SMALL_ARCHS = {  # one block per stage (two in a shifted Swin stage), 64 px pre-training maps
    FLattenPVT: dict(embed_dims=[16, 32, 40, 48], depths=[1, 1, 1, 1], num_heads=[1, 2, 2, 2],
                     mlp_ratios=[2, 2, 2, 2], attn_types='LLSS', pretrain_img_size=64),
    FLattenPVTv2: dict(embed_dims=[16, 32, 40, 48], depths=[1, 1, 1, 1], num_heads=[1, 2, 2, 2],
                       mlp_ratios=[2, 2, 2, 2], pretrain_img_size=64),
    FLattenSwin: dict(embed_dims=[16, 32, 64, 128], depths=[1, 1, 2, 1], num_heads=[1, 2, 2, 2],
                      window_size=4, pretrain_img_size=64),
    FLattenCSWin: dict(embed_dims=[16, 32, 64, 128], depths=[1, 1, 1, 1], num_heads=[2, 2, 2, 2],
                       split_sizes=[16, 8, 2, 2], pretrain_img_size=64),
}
CONFIG = """
default_scope = 'mmpretrain'
model = dict(type='ImageClassifier', backbone=dict(type='{type}', arch={arch}),
             data_preprocessor=dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                                    to_rgb=True))
"""


def randomised(module):
    """Every parameter random (zero-initialised ones too: position encodings, focus scales)."""
    torch.manual_seed(0)
    with torch.no_grad():
        for param in module.parameters():
            param.normal_(0, 0.2)
    return module.eval()


@pytest.fixture(scope='module')
def image_path(tmp_path_factory):
    y, x = np.mgrid[:IMAGE_HW[0], :IMAGE_HW[1]]
    rgb = np.stack([x * 255 // IMAGE_HW[1], y * 255 // IMAGE_HW[0], (x * y) % 256], -1)
    path = tmp_path_factory.mktemp('image') / 'image.png'
    Image.fromarray(rgb.astype(np.uint8)).save(path)
    return str(path)


def host_files(tmp_path, host, arch=None, **extra):
    """A classifier config of ``host``'s small arch (or ``arch``) and a checkpoint of its random
    weights."""
    arch = arch or SMALL_ARCHS[host]
    config = tmp_path / f'{host.__name__}.py'
    config.write_text(CONFIG.format(type=host.__name__, arch=arch))
    backbone = randomised(host(arch=arch, **extra))
    checkpoint = tmp_path / f'{host.__name__}.pth'
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in backbone.state_dict().items()},
                'meta': {}}, checkpoint)
    return str(config), str(checkpoint), backbone


def map_colours(png, image):
    """The map's colours in a drawn overlay, (overlay - (1 - alpha) image) / alpha, off the mark:
    (pixels, 3)."""
    unmarked = ~(png == core.MARK_COLOR).all(-1)
    return ((png.astype(float) - (1 - core.ALPHA) * image) / core.ALPHA)[unmarked]


def mark_centre(png):
    rows, cols = np.nonzero((png == core.MARK_COLOR).all(-1))
    return rows.mean(), cols.mean()


@pytest.mark.parametrize('host', list(SMALL_ARCHS), ids=lambda host: host.__name__)
def test_tool_draws_each_block_of_every_flatten_host(host, image_path, tmp_path):
    config, checkpoint, backbone = host_files(tmp_path, host)
    out = tmp_path / 'out'
    paths = tool.main([config, checkpoint, image_path, '--out-dir', str(out),
                       '--query', '0.25', '66'])
    blocks = [f'stage{i + 1}.block{j + 1}' for i, stage in enumerate(backbone.stages)
              for j in range(len(stage.blocks))]
    assert [p.split('_', 1)[1].split('_')[0] for p in map(lambda p: p.rsplit('/', 1)[1], paths)
            ] == blocks
    image = np.asarray(Image.open(image_path))
    for path in paths:
        png = np.asarray(Image.open(path).convert('RGB'))
        assert png.shape == image.shape
        assert png.var() > 0
        assert map_colours(png, image).std(0).max() > 10  # the map is not flat
        # query (0.25, 66 px): row 0.25 * 72 = 18, column 66
        centre = mark_centre(png)
        assert abs(centre[0] - 18) <= 1 and abs(centre[1] - 66) <= 1


def test_sheet_has_the_image_and_every_map(image_path, tmp_path):
    config, checkpoint, backbone = host_files(tmp_path, FLattenSwin)
    paths = tool.main([config, checkpoint, image_path, '--out-dir', str(tmp_path / 'out'),
                       '--sheet', '--layers', 'stage3.*', 'stage1.block1'])
    assert [p.rsplit('/', 1)[1] for p in paths] == ['sheet.png']
    sheet = np.asarray(Image.open(paths[0]).convert('RGB'))
    panels = 1 + 3  # the image, stage1.block1, stage3.block1-2: one row
    assert sheet.shape == (IMAGE_HW[0] + core.TITLE_HEIGHT, panels * IMAGE_HW[1], 3)
    image_panel = sheet[core.TITLE_HEIGHT:, :IMAGE_HW[1]]
    centre = mark_centre(image_panel)  # default query: the centre
    assert abs(centre[0] - IMAGE_HW[0] // 2) <= 1 and abs(centre[1] - IMAGE_HW[1] // 2) <= 1


@pytest.mark.parametrize('host', list(SMALL_ARCHS), ids=lambda host: host.__name__)
def test_maps_are_distributions_over_the_keys(host):
    backbone = randomised(host(arch=SMALL_ARCHS[host]))
    maps = core.visualize(backbone, torch.randn(1, 3, *IMAGE_HW), query=(0.4, 0.7))
    assert len(maps) == sum(len(stage.blocks) for stage in backbone.stages)
    for title, values in maps:
        assert values.dim() == 2 and (values >= 0).all(), title
        assert values.sum().item() == pytest.approx(1, abs=1e-4), title


def test_groupmixformer_draws_group_mix_attention_on_a_photo(tmp_path):
    """GroupMixFormer's probe drawn: one map per block over a photo (matplotlib's sample, made
    small), each the query's weights over the keys (a distribution), with the query marked."""
    photo = tmp_path / 'photo.png'
    Image.open(matplotlib.cbook.get_sample_data('grace_hopper.jpg')).convert('RGB').resize(
        IMAGE_HW[::-1]).save(photo)
    arch = dict(embed_dims=[40, 40, 80, 80], depths=[1, 2, 1, 1], mlp_ratios=[2, 2, 2, 2])
    config, checkpoint, backbone = host_files(tmp_path, GroupMixFormer, arch=arch)
    maps = core.visualize(backbone, torch.randn(1, 3, *IMAGE_HW), query=(0.4, 0.7))
    assert [title for title, _ in maps] == [
        'stage1.block1 group-mix', 'stage2.block1 group-mix', 'stage2.block2 group-mix',
        'stage3.block1 group-mix', 'stage4.block1 group-mix']
    for (title, values), stride in zip(maps, (4, 8, 8, 16, 32)):
        assert values.shape == tuple(-(-size // stride) for size in IMAGE_HW), title
        assert (values >= 0).all() and values.sum().item() == pytest.approx(1, abs=1e-4), title
    paths = tool.main([config, checkpoint, str(photo), '--out-dir', str(tmp_path / 'out'),
                       '--query', '0.25', '66'])
    image = np.asarray(Image.open(photo))
    assert len(paths) == 5
    for path in paths:
        png = np.asarray(Image.open(path).convert('RGB'))
        assert png.shape == image.shape and map_colours(png, image).std(0).max() > 10
        centre = mark_centre(png)
        assert abs(centre[0] - 18) <= 1 and abs(centre[1] - 66) <= 1


@pytest.mark.parametrize('module', [
    ProjectedLinearAttention(16, fused_qkv=False, num_heads=2, pos_hw=(4, 4)),
    CSWinLinearAttention(16, num_heads=2, pos_hw=(4, 4))], ids=['projected', 'cswin'])
def test_focused_attention_rows_are_the_modules_attention(module):
    """Rows sum to 1 and, applied to v, give attend()'s output less its dwc term."""
    randomised(module)
    hw, heads = (5, 7), 2
    q, k, v = torch.randn(3, 1, 35, 16).unbind(0)
    record = record_attention(module, lambda: module.attend(q, k, v, hw),
                              {'': module.attn_weights})['']
    rows = record['weights']  # (1, heads, 35, 35)
    # 1 up to attend's 1e-6 added to the normaliser
    assert torch.allclose(rows.sum(-1), torch.ones(1, heads, 35), atol=1e-3)
    v_heads = v.reshape(1, 35, heads, 8).transpose(1, 2)
    dwc = module.dwc(v_heads.reshape(heads, *hw, 8).permute(0, 3, 1, 2)).reshape(1, 16, 35)
    with torch.no_grad():
        expected = module.attend(q, k, v, hw) - dwc.transpose(1, 2)
    assert torch.allclose((rows @ v_heads).transpose(1, 2).reshape(1, 35, 16), expected,
                          atol=1e-4)
    one = attention_row(record, (3, 2)).weights  # (heads, 5, 7)
    assert torch.equal(one.flatten(1), rows[0, :, 3 * 7 + 2])
    calls = []
    handle = module.attn_weights.register_forward_hook(lambda *args: calls.append(args))
    with torch.no_grad():
        module.attend(q, k, v, hw)  # not recording: no N x N weights computed
    handle.remove()
    assert not calls


@pytest.mark.parametrize('module, inputs', [
    (ShiftedWindowAttention(16, num_heads=2, window_size=4, shifted=True),
     (torch.randn(2, 63, 16), (7, 9))),
    (SpatialReductionAttention(16, num_heads=2, sr_ratio=2), (torch.randn(2, 63, 16), (7, 9))),
    (CSWinStripeAttention(16, num_heads=2, split_size=3, direction=1),
     (*torch.randn(3, 2, 56, 16).unbind(0), (7, 8))),
    (ProjectedLinearAttention(16, fused_qkv=True, num_heads=2, pos_hw=(4, 4)),
     (torch.randn(2, 63, 16), (7, 9)))], ids=['window', 'reduction', 'stripe', 'linear'])
def test_recorded_weights_are_those_the_module_computes_with(module, inputs):
    """Recording takes the explicit path, whose output is the fused path's; the recorded rows
    are distributions over the real keys."""
    randomised(module)
    with torch.no_grad():
        fused = module(*inputs)
    record = record_attention(module, lambda: module(*inputs), {'': module.attn_weights})['']
    with torch.no_grad():
        recorded = module(*inputs)
    from groupmix_backbones.models.layers import recording_attention
    with torch.no_grad(), recording_attention(module):
        explicit = module(*inputs)
    assert torch.equal(fused, recorded)  # recording is off again
    assert torch.allclose(explicit, fused, atol=1e-5)
    assert record['weights'].shape[0] == 2
    sums = record['weights'].sum(-1)
    if isinstance(module, ProjectedLinearAttention):  # q.k / (q.sum(k) + 1e-6): at most 1
        assert (sums <= 1 + 1e-5).all() and (sums > 0).all()
    else:
        assert torch.allclose(sums, torch.ones(()), atol=1e-5)


def per_head_output(weights, v, hw):
    """sum over keys of weights (heads, H, W) x v (1, N, C) -> (C,)"""
    heads = weights.shape[0]
    v = v[0].reshape(*hw, heads, -1)
    return torch.einsum('hyx,yxhd->hd', weights, v).reshape(-1)


@pytest.mark.parametrize('shifted', [False, True])
@pytest.mark.parametrize('cell', [(0, 0), (4, 6), (6, 8)])
def test_window_map_is_the_modules_attention(shifted, cell):
    module = randomised(ShiftedWindowAttention(16, num_heads=2, window_size=4, shifted=shifted))
    hw = (7, 9)  # padded to 8 x 12
    x = torch.randn(1, 63, 16)
    with torch.no_grad():
        weights = module_attention_map(module, x, hw, cell=cell)
        v = module.qkv(x).chunk(3, dim=-1)[2]
        out = module.proj(per_head_output(weights, v, hw))
        expected = module(x, hw)[0, cell[0] * hw[1] + cell[1]]
    assert torch.allclose(weights.flatten(1).sum(1), torch.ones(2), atol=1e-5)
    assert torch.allclose(out, expected, atol=1e-5)


def test_spatial_reduction_map_is_the_modules_attention():
    module = randomised(SpatialReductionAttention(16, num_heads=2, sr_ratio=2))
    hw, cell = (6, 8), (5, 2)
    x = torch.randn(1, 48, 16)
    with torch.no_grad():
        weights = module_attention_map(module, x, hw, cell=cell)  # spread over 2 x 2 cells
        keys = module.norm(module.sr(x.transpose(1, 2).reshape(1, 16, *hw)).flatten(2)
                           .transpose(1, 2))
        v = module.kv(keys).chunk(2, dim=-1)[1]
        v = v.reshape(1, 3, 4, 16).repeat_interleave(2, 1).repeat_interleave(2, 2)
        v = v.reshape(1, 48, 16)  # each reduced key's value on its 2 x 2 cells
        out = module.proj(per_head_output(weights, v, hw))
    assert torch.allclose(out, module(x, hw)[0, cell[0] * hw[1] + cell[1]], atol=1e-5)


@pytest.mark.parametrize('direction', [0, 1, None])
def test_stripe_map_is_the_modules_attention_inside_its_stripe(direction):
    module = randomised(CSWinStripeAttention(16, num_heads=2, split_size=3, direction=direction))
    hw, cell = (7, 8), (4, 7)  # padded to stripe multiples
    q, k, v = torch.randn(3, 1, 56, 16).unbind(0)
    with torch.no_grad():
        with_lepe = module_attention_map(module, q, k, v, hw, cell=cell)
        nn.init.zeros_(module.lepe.weight)
        nn.init.zeros_(module.lepe.bias)
        attention = module_attention_map(module, q, k, v, hw, cell=cell)
        expected = module(q, k, v, hw)[0, cell[0] * hw[1] + cell[1]]
    assert torch.allclose(per_head_output(attention, v, hw), expected, atol=1e-5)
    assert torch.allclose(attention.flatten(1).sum(1), torch.ones(2), atol=1e-5)
    stripe = {0: (slice(0, 7), slice(6, 8)), 1: (slice(3, 6), slice(0, 8)),
              None: (slice(0, 7), slice(0, 8))}[direction]
    outside = attention.clone()
    outside[:, stripe[0], stripe[1]] = 0
    assert not outside.any()
    local = with_lepe - attention  # the LePE kernel around the query, inside the stripe
    assert local.abs().sum() > 0
    local[:, stripe[0], stripe[1]] = 0
    assert not local.any()


@pytest.mark.parametrize('config', [
    'mmpretrain_cfgs/flatten/flatten-pvtv2-b0_demo.py',
    'mmdet_cfgs/flatten/mask-rcnn_flatten-pvtv2-b0_fpn_demo.py',
    'mmseg_cfgs/flatten/upernet_flatten-pvtv2-b0_demo.py'])
def test_tool_takes_the_backbone_of_any_task_config(config, image_path, tmp_path, in_repo):
    backbone = randomised(FLattenPVTv2(arch='b0'))
    checkpoint = tmp_path / 'backbone.pth'  # a backbone's own keys (e.g. converted weights)
    torch.save(backbone.state_dict(), checkpoint)
    paths = tool.main([config, str(checkpoint), image_path, '--out-dir', str(tmp_path),
                       '--layers', 'stage4.block2 linear'])
    assert [p.rsplit('/', 1)[1] for p in paths] == ['00_stage4.block2_linear.png']


def test_preprocessing_follows_the_config(in_repo):
    from mmengine.config import Config
    rgb = np.full((4, 5, 3), (10, 20, 30), np.uint8)
    cfg = Config.fromfile('mmpretrain_cfgs/flatten/flatten-pvtv2-b0_demo.py')
    image = tool.normalise(rgb, cfg)
    assert image.shape == (1, 3, 4, 5)
    assert image[0, :, 0, 0].tolist() == pytest.approx(
        [(10 - 123.675) / 58.395, (20 - 116.28) / 57.12, (30 - 103.53) / 57.375])
    cfg.data_preprocessor.to_rgb = False  # the model takes BGR
    assert tool.normalise(rgb, cfg)[0, 0, 0, 0].item() == pytest.approx((30 - 123.675) / 58.395)


def test_errors_say_what_to_do(image_path, tmp_path, in_repo):
    config, checkpoint, _ = host_files(tmp_path, FLattenSwin)
    out = ['--out-dir', str(tmp_path / 'out')]
    with pytest.raises(FileNotFoundError, match='missing.png'):
        tool.main([config, checkpoint, str(tmp_path / 'missing.png'), *out])
    not_image = tmp_path / 'notes.png'
    not_image.write_text('not an image')
    with pytest.raises(ValueError, match='not an image'):
        tool.main([config, checkpoint, str(not_image), *out])
    unified = 'mmpretrain_cfgs/unified/unified-swin-tiny_8xb128_in1k.py'
    with pytest.raises(core.UnknownBackboneError, match='UnifiedSwin.*FLattenCSWin, FLattenPVT, '
                                                        'FLattenPVTv2, FLattenSwin, GroupMixFormer'):
        tool.main([unified, checkpoint, image_path, *out])
    no_backbone = tmp_path / 'no_backbone.py'
    no_backbone.write_text("model = dict(type='ImageClassifier')")
    with pytest.raises(ValueError, match='no model.backbone'):
        tool.main([str(no_backbone), checkpoint, image_path, *out])
    with pytest.raises(ValueError, match='Maps of this backbone: stage1.block1 linear, '):
        tool.main([config, checkpoint, image_path, *out, '--layers', 'stage9.*'])
    for query, problem in ((['0.5', '1.5'], 'fraction in'), (['72', '0'], 'outside the image')):
        with pytest.raises(ValueError, match=problem):
            tool.main([config, checkpoint, image_path, *out, '--query', *query])
    _, pvt_checkpoint, _ = host_files(tmp_path, FLattenPVT)
    with pytest.raises(CheckpointMismatchError, match='does not fit FLattenSwin'):
        tool.main([config, pvt_checkpoint, image_path, *out])
    assert not (tmp_path / 'out').exists()


class Toy(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 1, 3, stride=4)

    def forward(self, x):
        return self.conv(x)


def test_a_family_needs_only_a_registered_visualizer(tmp_path):
    """A query-free map (as SG-Former's significance) through the same hooks and drawing."""
    @core.register_visualizer('Toy')
    def toy_maps(backbone, image, *, query=None):
        seen = core.run_with_hooks(lambda: backbone(image), {'conv': backbone.conv})
        assert query is None and seen['conv'][0][0] is image
        return [('significance', backbone.conv(image)[0, 0])]

    try:
        image = torch.randn(1, 3, 30, 41)
        maps = core.visualize(Toy(), image)
        rgb = np.zeros((30, 41, 3), np.uint8)
        paths = core.draw_maps(rgb, maps, str(tmp_path), query=core.marked_query('Toy', None))
    finally:
        del core.VISUALIZERS['Toy']
    png = np.asarray(Image.open(paths[0]))
    assert paths[0].endswith('00_significance.png') and png.shape == (30, 41, 3)
    assert not (png == core.MARK_COLOR).all(-1).any()  # no query, no mark
    assert core.marked_query('FLattenSwin', None) == core.DEFAULT_QUERY


class Payload:
    """Pickles as ``os.system(command)``."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        import os
        return os.system, (self.command, )


def test_a_crafted_checkpoint_is_refused(image_path, tmp_path):
    config, _, backbone = host_files(tmp_path, FLattenPVTv2)
    marker = tmp_path / 'ran'
    crafted = tmp_path / 'crafted.pth'
    torch.save({'state_dict': dict(backbone.state_dict()), 'meta': Payload(f'touch {marker}')},
               crafted)
    with pytest.raises(UnsafeCheckpointError, match='crafted.pth'):
        tool.main([config, str(crafted), image_path, '--out-dir', str(tmp_path / 'out')])
    assert not marker.exists()
