_base_ = './upernet_flatten-pvt-tiny_8xb2-160k_ade20k-512x512.py'
model = dict(
    backbone=dict(arch='medium',
                  init_cfg=dict(checkpoint='checkpoints/flatten-pvt-medium_in1k.pth')))
