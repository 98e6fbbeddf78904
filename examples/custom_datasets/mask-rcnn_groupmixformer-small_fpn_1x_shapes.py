# Mask R-CNN with GroupMixFormer-S on your own classes, a COCO-format set (here the demo shapes:
# python -m groupmix_backbones make_demo_data --tasks det). The class names are the annotation
# files' category names; both heads predict them; every loader and evaluator reads your files.
_base_ = 'groupmix_backbones::mmdet_cfgs/groupmixformer/mask-rcnn_groupmixformer-small_fpn_1x_coco.py'

data_root = 'data/demo/coco/'
metainfo = dict(classes=('circle', 'square', 'triangle', 'star', 'cross', 'ring'))
num_classes = len(metainfo['classes'])
model = dict(
    # the backbone from the converted official ImageNet weights (as the base config); or the
    # whole detector from a COCO-trained checkpoint with load_from (heads of other classes are
    # skipped with a warning)
    backbone=dict(init_cfg=dict(checkpoint='checkpoints/groupmixformer-small_in1k.pth')),
    roi_head=dict(bbox_head=dict(num_classes=num_classes),
                  mask_head=dict(num_classes=num_classes)))
train_dataloader = dict(
    dataset=dict(data_root=data_root, metainfo=metainfo,
                 ann_file='annotations/instances_train2017.json',
                 data_prefix=dict(img='train2017/')))
val_dataloader = dict(
    dataset=dict(data_root=data_root, metainfo=metainfo,
                 ann_file='annotations/instances_val2017.json',
                 data_prefix=dict(img='val2017/')))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator
