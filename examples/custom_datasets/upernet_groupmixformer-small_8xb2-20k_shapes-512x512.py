# UperNet with GroupMixFormer-S on your own classes, an ADE20K-style set: images/{training,
# validation}/*.jpg and annotations/{training,validation}/*.png label maps whose value i is class i
# (here the demo shapes, 0 the background: python -m groupmix_backbones make_demo_data --tasks seg).
_base_ = ('groupmix_backbones::mmseg_cfgs/groupmixformer/'
          'upernet_groupmixformer-small_8xb2-160k_ade20k-512x512.py')

data_root = 'data/demo/ade/ADEChallengeData2016'
metainfo = dict(classes=('background', 'circle', 'square', 'triangle', 'star', 'cross', 'ring'))
model = dict(
    backbone=dict(init_cfg=dict(checkpoint='checkpoints/groupmixformer-small_in1k.pth')),
    decode_head=dict(num_classes=len(metainfo['classes'])),
    auxiliary_head=dict(num_classes=len(metainfo['classes'])))
# ADE20K's folder layout with your classes (ADE20KDataset insists on its 150); value 0 is a class
# here, so no reduce_zero_label (ADE20K's 0, "other", is ignored with it)
dataset = dict(type='BaseSegDataset', data_root=data_root, metainfo=metainfo, img_suffix='.jpg',
               seg_map_suffix='.png', reduce_zero_label=False)
train_pipeline = [dict(transform, reduce_zero_label=False) if transform['type'] == 'LoadAnnotations'
                  else transform for transform in _base_.train_pipeline]
test_pipeline = [dict(transform, reduce_zero_label=False) if transform['type'] == 'LoadAnnotations'
                 else transform for transform in _base_.test_pipeline]
train_dataloader = dict(dataset=dict(
    _delete_=True,
    data_prefix=dict(img_path='images/training', seg_map_path='annotations/training'),
    pipeline=train_pipeline, **dataset))
val_dataloader = dict(dataset=dict(
    _delete_=True,
    data_prefix=dict(img_path='images/validation', seg_map_path='annotations/validation'),
    pipeline=test_pipeline, **dataset))
test_dataloader = val_dataloader
train_cfg = dict(max_iters=20000, val_interval=2000)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=1500, end=20000, by_epoch=False),
]
