_base_ = './upernet_flatten-swin-tiny_8xb2-160k_ade20k-512x512.py'
model = dict(
    backbone=dict(arch='small', drop_path_rate=0.3,
                  init_cfg=dict(checkpoint='checkpoints/flatten-swin-small_in1k.pth')))
