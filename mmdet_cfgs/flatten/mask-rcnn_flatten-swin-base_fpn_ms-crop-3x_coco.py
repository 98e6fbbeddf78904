_base_ = './mask-rcnn_flatten-swin-tiny_fpn_ms-crop-3x_coco.py'
model = dict(
    backbone=dict(arch='base', drop_path_rate=0.3,
                  init_cfg=dict(checkpoint='checkpoints/flatten-swin-base_in1k.pth')),
    neck=dict(in_channels=[128, 256, 512, 1024]))
