_base_ = './upernet_flatten-pvt-tiny_8xb2-160k_ade20k-512x512.py'
model = dict(
    backbone=dict(arch='small',
                  init_cfg=dict(checkpoint='checkpoints/flatten-pvt-small_in1k.pth')))
