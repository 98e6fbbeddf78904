"""The model zoo's facts: for each backbone class and arch, what its paper or official repository
reports (ImageNet-1k top-1, COCO Mask R-CNN box/mask AP, ADE20K UperNet mIoU), where it says so,
and the official weights: the one catalogue of them. Plain data, importable without side effects;
``tools/model_zoo.py`` turns it into ``docs/model_zoo.md`` and OpenMMLab metafiles, and the timm
registrations (:mod:`.timm_models`) take their weights from :func:`official_weights`.

Only numbers that a source states for one arch are here; a missing key means not published there.
"""
from typing import Optional, Tuple

from .converters import DETECTION_RESULTS, FLATTEN, GROUPMIXFORMER, SGFORMER, STM


def _github(official_format) -> str:
    return f'https://github.com/{official_format.repo}'


GROUPMIXFORMER_README = ('https://github.com/AILab-CVC/GroupMixFormer/blob/'
                         '3d3f40977c6aa9f5d9eb3d6ffb53cc9c648cf7b2/README.md')
FLATTEN_README = ('https://github.com/LeapLabTHU/FLatten-Transformer/blob/'
                  'abdb115f5406c0e1b6864aad7fe998a3f424ae76/README.md')
SGFORMER_ABSTRACT = 'https://arxiv.org/abs/2308.12216'
STM_README = ('https://github.com/OpenGVLab/STM-Evaluation/blob/'
              'b62c4714d47330dc10e742fa1a8b0c3851403b53/README.md')
STM_DETECTION_README = ('https://github.com/OpenGVLab/STM-Evaluation/blob/'
                        'b62c4714d47330dc10e742fa1a8b0c3851403b53/detection/readme.md')

#: one entry per paper: its backbone classes, where its code is and the converter of its weights
#: (both from the family's converter format)
COLLECTIONS = {
    'GroupMixFormer': dict(
        paper='Advancing Vision Transformers with Group-Mix Attention',
        paper_url='https://arxiv.org/abs/2311.15157',
        code_url=_github(GROUPMIXFORMER),
        classes=('GroupMixFormer', ),
        converter=GROUPMIXFORMER.script),
    'FLatten Transformer': dict(
        paper='FLatten Transformer: Vision Transformer using Focused Linear Attention',
        paper_url='https://arxiv.org/abs/2308.00442',
        code_url=_github(FLATTEN),
        classes=('FLattenPVT', 'FLattenPVTv2', 'FLattenSwin', 'FLattenCSWin'),
        converter=FLATTEN.script),
    'SG-Former': dict(
        paper='SG-Former: Self-guided Transformer with Evolving Token Reallocation',
        paper_url='https://arxiv.org/abs/2308.12216',
        code_url=_github(SGFORMER),
        classes=('SGFormer', ),
        converter=SGFORMER.script),
    'Unified token mixers': dict(
        paper='Demystify Transformers & Convolutions in Modern Image Deep Networks',
        paper_url='https://arxiv.org/abs/2211.05781',
        code_url=_github(STM),
        classes=('UnifiedHaloNet', 'UnifiedPVT', 'UnifiedSwin', 'UnifiedConvNeXt',
                 'UnifiedInternImage', 'UnifiedGroupMix', 'UnifiedFLatten'),
        converter=STM.script),
}

_GMF_WEIGHTS = ('https://connecthkuhk-my.sharepoint.com/:f:/g/personal/'
                'rhettgee_connect_hku_hk/')
_FLATTEN_WEIGHTS = 'https://cloud.tsinghua.edu.cn/f/'
_STM_WEIGHTS = 'https://github.com/OpenGVLab/STM-Evaluation/releases/download/'
_SGFORMER_WEIGHTS = 'https://drive.google.com/drive/folders/1ZJDEwxDffqqqzBC2SzhOkpWpGRweDsE4'
#: the official weights that are folders to download from by hand, not files
_DOWNLOAD_PAGES = (_GMF_WEIGHTS, _SGFORMER_WEIGHTS)

#: (class, arch) -> top1 (ImageNet-1k, at ``resolution``, default 224), box_ap / mask_ap (COCO
#: Mask R-CNN, schedule ``det_schedule``: '1x', '3x' or None where the source does not say),
#: miou (ADE20K UperNet), each number's source URL (``top1_source``, ``det_source``,
#: ``seg_source``), ``weights`` (the official ImageNet checkpoint, for our converters),
#: ``detector_weights`` (official Mask R-CNN checkpoints, in the official repository's format)
#: and ``note`` (what a reader must know about the numbers or weights)
MODELS = {
    ('GroupMixFormer', 'mini'): dict(
        top1=79.6, top1_source=GROUPMIXFORMER_README,
        weights=_GMF_WEIGHTS + 'EuH7I7RGUSVHhD46RTECpesBqJVyACRzmBDwBXYWRxcDtg?e=Qvexbk'),
    ('GroupMixFormer', 'tiny'): dict(
        top1=82.6, top1_source=GROUPMIXFORMER_README,
        weights=_GMF_WEIGHTS + 'EnRAzY3LalhGmqx91sEIqrUBLoa5ISS9kOw1ujNcOWSrzA?e=vkCUTZ'),
    ('GroupMixFormer', 'small'): dict(
        top1=83.4, top1_source=GROUPMIXFORMER_README,
        weights=_GMF_WEIGHTS + 'Em7lUESSPaFPowQotlsUi1sBjA9uVldOUi2mbqdF40Uktw?e=ExCTeU'),
    ('GroupMixFormer', 'base'): dict(
        top1=84.7, top1_source=GROUPMIXFORMER_README,
        miou=51.2, seg_source=GROUPMIXFORMER_README,
        weights=_GMF_WEIGHTS + 'Env1DBxPFZpMifAaVhHpKYgB3O4urE34o4b9_g4Jr-JfQQ?e=C6ed1c',
        note='mIoU from the abstract (head and schedule not stated there)'),
    ('GroupMixFormer', 'large'): dict(
        top1=85.0, top1_source=GROUPMIXFORMER_README,
        weights=_GMF_WEIGHTS + 'EuH7I7RGUSVHhD46RTECpesBqJVyACRzmBDwBXYWRxcDtg?e=Qvexbk',
        note="the README's link for L is the same folder as M's; its configs/"
        "groupmixformer_large.yaml builds 71.8M parameters (71.4M without the head, as ours; "
        "counted from the official code), not the 70.3M and 36.1 GFLOPs its README states for "
        "L, while M to B match their README rows"),
    ('FLattenPVT', 'tiny'): dict(
        top1=77.8, top1_source=FLATTEN_README,
        weights=_FLATTEN_WEIGHTS + '3ab1d773f19d45648690/?dl=1'),
    ('FLattenPVTv2', 'b0'): dict(
        top1=71.1, top1_source=FLATTEN_README,
        weights=_FLATTEN_WEIGHTS + '5d1f01532b104da28e7b/?dl=1'),
    ('FLattenSwin', 'tiny'): dict(
        top1=82.1, top1_source=FLATTEN_README,
        weights=_FLATTEN_WEIGHTS + 'e1518e76703e4e57a7f2/?dl=1'),
    ('FLattenSwin', 'small'): dict(
        top1=83.5, top1_source=FLATTEN_README,
        weights=_FLATTEN_WEIGHTS + '94188e52af354bf4a88b/?dl=1'),
    ('FLattenSwin', 'base'): dict(
        top1=83.8, top1_source=FLATTEN_README,
        weights=_FLATTEN_WEIGHTS + '7a9e5186bad04e7fb3a9/?dl=1'),
    ('FLattenSwin', 'base_384'): dict(
        top1=85.0, resolution=384, top1_source=FLATTEN_README,
        weights=_FLATTEN_WEIGHTS + '0d0330cf2e5249f1abb6/?dl=1'),
    ('FLattenCSWin', 'tiny'): dict(
        top1=83.1, top1_source=FLATTEN_README,
        weights=_FLATTEN_WEIGHTS + '48ba765ba8b0451d9d5a/?dl=1'),
    ('SGFormer', 'b'): dict(
        top1=84.7, top1_source=SGFORMER_ABSTRACT,
        box_ap=51.2, det_source=SGFORMER_ABSTRACT,
        miou=52.7, seg_source=SGFORMER_ABSTRACT,
        note='numbers from the abstract (detector, schedule and segmentor not stated there); '
             'weights: one Google Drive folder for s, m and b'),
    ('SGFormer', 's'): dict(
        note='weights: one Google Drive folder for s, m and b'),
    ('SGFormer', 'm'): dict(
        note='weights: one Google Drive folder for s, m and b'),
}

for _arch in ('s', 'm', 'b'):
    MODELS['SGFormer', _arch]['weights'] = _SGFORMER_WEIGHTS
del _arch

#: the unified family: top-1 (README); the Mask R-CNN 1x box / mask AP and detector weights
#: (detection/readme.md) are the converters' table, which the detectors load through
_STM = {  # class: (official name, {arch: top-1})
    'UnifiedHaloNet': ('halonet', dict(micro=75.8, tiny=83.0, small=84.0, base=84.6)),
    'UnifiedPVT': ('pvt', dict(micro=72.8, tiny=82.1, small=83.2, base=83.4)),
    'UnifiedSwin': ('swin', dict(micro=74.4, tiny=82.3, small=83.3, base=83.7)),
    'UnifiedConvNeXt': ('convnext', dict(micro=75.1, tiny=82.2, small=83.1, base=83.7)),
    'UnifiedInternImage': ('internimage', dict(micro=75.3, tiny=83.3, small=84.1, base=84.5)),
}
for _cls, (_name, _archs) in _STM.items():
    for _arch, _top1 in _archs.items():
        _box_ap, _mask_ap, _detector = DETECTION_RESULTS[_cls, _arch]
        MODELS[_cls, _arch] = dict(
            top1=_top1, top1_source=STM_README, box_ap=_box_ap, mask_ap=_mask_ap,
            det_schedule='1x', det_source=STM_DETECTION_README,
            weights=f'{_STM_WEIGHTS}cls-ckpt/unified_{_name}_{_arch}.pth',
            detector_weights=_detector)
del _cls, _name, _archs, _arch, _top1, _box_ap, _mask_ap, _detector
#: the seeds' attentions as unified mixers (docs/mixers.md): new models, nothing released
for _cls in ('UnifiedGroupMix', 'UnifiedFLatten'):
    for _arch in ('micro', 'tiny', 'small', 'base'):
        MODELS[_cls, _arch] = dict(
            released=False, note='a new model of this toolkit (docs/mixers.md): no released '
            'weights; train the classification config first')
del _cls, _arch


def official_weights(name: str, arch: str) -> Tuple[Optional[str], Optional[str]]:
    """``(url, page)`` of the official ImageNet weights of backbone class ``name``, ``arch``: the
    URL of the file, or the page (a folder) to download it from by hand; ``(None, None)`` where
    none are published."""
    url = MODELS.get((name, arch), {}).get('weights')
    if url and url.startswith(_DOWNLOAD_PAGES):
        return None, url
    return url, None
