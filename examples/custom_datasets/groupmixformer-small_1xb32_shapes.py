# GroupMixFormer-S on your own classes, an ImageNet-style folder set: one folder per class under
# train/ and val/ (here the demo shapes: python -m groupmix_backbones make_demo_data --tasks cls).
# Everything else as our ImageNet config (Swin recipe: AdamW, Mixup/CutMix, 300 epochs).
_base_ = 'groupmix_backbones::mmpretrain_cfgs/groupmixformer/groupmixformer-small_8xb128_in1k.py'

data_root = 'data/demo/imagenet/'
# the class folders' names, sorted (mmpretrain labels the folders in sorted order; an annotation
# list, ann_file='meta/train.txt' with '<path> <label>' lines, labels them as it says)
classes = ('circle', 'cross', 'ring', 'square', 'star', 'triangle')
model = dict(
    # from the converted official ImageNet weights (the head starts fresh: other classes)
    backbone=dict(init_cfg=dict(type='Pretrained', prefix='backbone.',
                                checkpoint='checkpoints/groupmixformer-small_in1k.pth')),
    head=dict(num_classes=len(classes)))
data_preprocessor = dict(num_classes=len(classes))  # Mixup/CutMix one-hot labels
dataset = dict(type='CustomDataset', data_root=data_root, classes=classes, ann_file='')
train_dataloader = dict(batch_size=32,
                        dataset=dict(_delete_=True, data_prefix='train', **dataset,
                                     pipeline=_base_.train_pipeline))
val_dataloader = dict(batch_size=32,
                      dataset=dict(_delete_=True, data_prefix='val', **dataset,
                                   pipeline=_base_.test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, ))  # top-5 needs more than 5 classes
test_evaluator = val_evaluator
train_cfg = dict(max_epochs=100)
