"""tools/analysis_tools/compare_official.py against stand-ins of an official repository that the
test writes (official key names, a classifier's forward), one faithful and one not."""
import os.path as osp
import sys

import pytest

from conftest import REPO, load_tool

CONFIG = 'mmpretrain_cfgs/groupmixformer/groupmixformer-mini_8xb128_in1k.py'

STAND_IN = '''
"""Stand-in of AILab-CVC/GroupMixFormer's models/groupmixformer.py: our classifier under the
official key names (the inverse of our converter, written out in tests/test_converter.py)."""
import ipdb  # the official file imports it; the tool provides a stub when it is missing
import torch
from mmengine.registry import DefaultScope
from mmpretrain.registry import MODELS
from test_converter import to_official


class GroupMixFormer(torch.nn.Module):
    def __init__(self, embedding_dims, serial_depths, mlp_ratios, drop_path_rate=0.2):
        super().__init__()
        with DefaultScope.overwrite_default_scope('mmpretrain'):
            self.inner = MODELS.build(dict(
                type='ImageClassifier',
                backbone=dict(type='GroupMixFormer', out_indices=(3, ), final_norm=True,
                              arch=dict(embed_dims=embedding_dims, depths=serial_depths,
                                        mlp_ratios=mlp_ratios)),
                neck=dict(type='GlobalAveragePooling'),
                head=dict(type='LinearClsHead', num_classes=1000,
                          in_channels=embedding_dims[-1])))

    def state_dict(self):
        return {to_official(k): v for k, v in self.inner.state_dict().items()}

    def forward(self, x):
        return self.inner(x, mode='tensor') + OFFSET
'''


def write_stand_in(root, offset):
    (root / 'models').mkdir(parents=True)
    (root / 'models' / 'groupmixformer.py').write_text(STAND_IN + f'\nOFFSET = {offset}\n')
    return str(root)


@pytest.mark.parametrize('offset,code', [(0.0, 0), (1e-2, 1)])
def test_compare_official(tmp_path, capsys, in_repo, offset, code):
    tool = load_tool('tools/analysis_tools/compare_official.py')
    assert tool.main(['--official-repo', write_stand_in(tmp_path, offset), CONFIG]) == code
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith(f'{CONFIG}: max |logit difference| at 224x224 = ')
    diff = float(line.split('= ')[1].split()[0])
    assert (diff < 1e-5) if offset == 0 else abs(diff - offset) < 1e-5


def test_compare_official_needs_the_official_files(tmp_path):
    from groupmix_backbones.analysis.official import compare
    with pytest.raises(FileNotFoundError, match=r'models/groupmixformer.py does not exist: '
                                                r'--official-repo must be a clone'):
        compare(osp.join(REPO, CONFIG), str(tmp_path))


STM_STAND_IN = {  # OpenGVLab/STM-Evaluation's layout: a package of relative imports
    '__init__.py': 'from . import blocks, model_factory\n',
    'blocks/__init__.py': 'from . import dcn_v3, swin\n',
    'blocks/swin.py': 'window_partition = window_reverse = None  # replaced by the tool\n',
    'blocks/dcn_v3.py': 'import MultiScaleDeformableAttention  # a CUDA extension: stubbed\n'
                        'MSDeformAttnFunction = None  # replaced by the tool\n',
    'model_factory/__init__.py': 'from . import swin_factory\n',
    'model_factory/swin_factory.py': '''
from timm.models.registry import register_model  # (the FLatten and SG-Former files' path)
from ..meta_arch import StandIn


@register_model  # kept from replacing our timm registration of the same name
def unified_swin_micro(pretrained=False, **kwargs):
    return StandIn()
''',
    'meta_arch.py': '''
"""Our classifier under the official key names (tests/test_unified.py's to_official)."""
import torch
from test_unified import build_classifier, to_official


class StandIn(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.inner = build_classifier('swin', 'micro')

    def state_dict(self):
        return to_official('swin', self.inner.state_dict())

    def forward(self, x):
        return self.inner(x, mode='tensor')
''',
}


def test_compare_official_imports_the_unified_package(tmp_path, capsys, in_repo):
    import timm.models

    import groupmix_backbones  # noqa: F401 (registers our timm models)
    for name, text in STM_STAND_IN.items():
        path = tmp_path / 'classification' / 'models' / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    ours = timm.models.model_entrypoint('unified_swin_micro')
    assert ours.__module__ == 'groupmix_backbones.timm_models'
    config = 'mmpretrain_cfgs/unified/unified-swin-micro_8xb128_in1k.py'
    tool = load_tool('tools/analysis_tools/compare_official.py')
    assert tool.main(['--official-repo', str(tmp_path), config]) == 0
    assert float(capsys.readouterr().out.split('= ')[-1].split()[0]) < 1e-5
    assert timm.models.model_entrypoint('unified_swin_micro') is ours
    assert not [name for name in sys.modules if name.startswith('official_models.')]
