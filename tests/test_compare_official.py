"""tools/analysis_tools/compare_official.py against stand-ins of an official repository that the
test writes (official key names, a classifier's forward), one faithful and one not."""
import os.path as osp

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
