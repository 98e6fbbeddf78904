_base_ = './upernet_flatten-cswin-tiny_8xb2-160k_ade20k-512x512.py'
model = dict(
    backbone=dict(arch='small', drop_path_rate=0.4,
                  init_cfg=dict(checkpoint='checkpoints/flatten-cswin-small_in1k.pth')))
