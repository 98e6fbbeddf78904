"""The whole Mask R-CNN in ONNX Runtime through mmdeploy (tools/deployment/mmdeploy_export.py):
the file's detections equal PyTorch's."""
import glob
import os.path as osp

import pytest
import torch

from conftest import REPO, load_tool
from groupmix_backbones.analysis import build_model

# tools/setup_env.sh installs it (with --no-deps: its pins conflict with this stack; no extra can)
pytest.importorskip('mmdeploy', reason='mmdeploy 1.3.1 is installed by tools/setup_env.sh, or '
                    'as tools/deployment/mmdeploy_export.py says')

CONFIG = osp.join(REPO, 'mmdet_cfgs/groupmixformer/mask-rcnn_groupmixformer-micro_fpn_demo.py')


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    """The demo Mask R-CNN with random weights, saved as a checkpoint: its initial weights,
    except that each class regresses a box of its own (initialised, their deltas are near zero)
    and the class scores are so close that an RoI's second class can outrank another's first
    (many near-equal scores: every selection step is exercised)."""
    torch.manual_seed(0)
    model, _ = build_model(CONFIG)
    model.init_weights()
    torch.nn.init.normal_(model.roi_head.bbox_head.fc_reg.weight, std=0.05)
    torch.nn.init.normal_(model.roi_head.bbox_head.fc_cls.weight, std=0.001)
    path = str(tmp_path_factory.mktemp('mask-rcnn') / 'model.pth')
    torch.save({'state_dict': model.state_dict()}, path)
    return path


def test_whole_mask_rcnn_matches_pytorch(demo_root, checkpoint, tmp_path, capsys):
    images = sorted(glob.glob(osp.join(demo_root, 'coco', 'val2017', '*.jpg')))
    assert len(images) == 4
    load_tool('tools/deployment/mmdeploy_export.py').main(
        [CONFIG, checkpoint, *images, '--out', str(tmp_path)])
    lines = [line for line in capsys.readouterr().out.splitlines() if '.jpg' in line]
    assert len(lines) == 4 and all('labels equal' in line for line in lines), lines
    assert all(' 0 detections' not in line for line in lines)  # something was compared
    assert osp.isfile(tmp_path / 'end2end.onnx')
    assert torch.onnx.export.__module__.startswith('torch')  # its TorchScript switch undone


def test_mmdeploys_own_heads_select_other_detections(demo_root, checkpoint):
    """Why the tool registers its own RPN and box-head rewrites: the rewritten model, run in
    PyTorch, gives mmdet's detections with them and other boxes with mmdeploy's."""
    from mmdeploy.apis.utils import build_task_processor
    from mmdeploy.core import RewriterContext, patch_model
    from mmdeploy.utils import IR
    from mmengine.config import Config
    tool = load_tool('tools/deployment/mmdeploy_export.py')
    tool.register_rpn_as_mmdet()
    tool.register_bbox_head_as_mmdet()
    deploy_cfg = tool.deploy_config(0.05)
    processor = build_task_processor(Config.fromfile(CONFIG), deploy_cfg, 'cpu')
    model = processor.build_pytorch_model(checkpoint)
    rewritten = patch_model(model, cfg=deploy_cfg, backend='onnxruntime', ir=IR.ONNX)

    def detections(backend, data):  # 'default': mmdeploy's own rewrites only
        with RewriterContext(cfg=deploy_cfg, backend=backend, ir=IR.ONNX), torch.no_grad():
            dets, labels, _ = rewritten.forward(data['inputs'], data['data_samples'])
        keep = dets[0, :, 4] > 0.05
        return torch.unique(torch.cat([dets[0, keep], labels[0, keep, None]], 1), dim=0)

    def mmdet(data):
        with torch.no_grad():
            found = model.predict(data['inputs'], data['data_samples'], rescale=False)[0]
        found = found.pred_instances[found.pred_instances.scores > 0.05]
        return torch.unique(torch.cat([found.bboxes, found.scores[:, None],
                                       found.labels[:, None].float()], 1), dim=0)

    differ = 0
    for image in sorted(glob.glob(osp.join(demo_root, 'coco', 'val2017', '*.jpg'))):
        data = model.data_preprocessor(processor.create_input(image, None)[0], False)
        expected, theirs = mmdet(data), detections('default', data)
        assert len(expected) > 1 and torch.equal(detections('onnxruntime', data), expected)
        differ += theirs.shape != expected.shape or not torch.equal(theirs, expected)
    assert differ
