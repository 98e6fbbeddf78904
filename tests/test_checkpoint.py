import os
import pickle

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import _load_checkpoint

from groupmix_backbones.checkpoint import UnsafeCheckpointError


class Exploit:
    """Pickles into a call of os.system when unpickled."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch {self.marker}', )


def test_mmengine_checkpoint_contents_load(tmp_path):
    buffer = HistoryBuffer()
    buffer.update(0.5)
    ckpt = {
        'meta': {'epoch': 3, 'seed': np.int64(7), 'lr': np.float64(1e-3), 'hist': np.arange(4),
                 'dataset_meta': {'classes': ('a', 'b')}},
        'message_hub': {'log_scalars': {'train/loss': buffer}, 'runtime_info': {'iter': 10}},
        'state_dict': {'w': torch.ones(2)},
    }
    path = tmp_path / 'ok.pth'
    torch.save(ckpt, path)
    loaded = _load_checkpoint(str(path), map_location='cpu')
    assert loaded['meta']['seed'] == 7 and loaded['meta']['hist'].tolist() == [0, 1, 2, 3]
    assert loaded['message_hub']['log_scalars']['train/loss'].current() == 0.5


def test_pickled_code_is_refused_unexecuted(tmp_path):
    marker = tmp_path / 'pwned'
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {'w': torch.ones(1)}, 'meta': Exploit(marker)}, path)
    with pytest.raises(UnsafeCheckpointError, match='system') as error:
        _load_checkpoint(str(path), map_location='cpu')
    assert isinstance(error.value, pickle.UnpicklingError)
    assert 'Nothing in it was executed' in str(error.value)
    assert not marker.exists()
