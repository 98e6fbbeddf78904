_base_ = './upernet_groupmixformer-small_8xb2-160k_ade20k-512x512.py'
model = dict(
    backbone=dict(arch='tiny', drop_path_rate=0.1,
                  init_cfg=dict(checkpoint='checkpoints/groupmixformer-tiny_in1k.pth')),
    decode_head=dict(in_channels=[80, 160, 200, 240]),
    auxiliary_head=dict(in_channels=200))
