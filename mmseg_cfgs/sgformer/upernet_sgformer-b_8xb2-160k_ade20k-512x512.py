_base_ = './upernet_sgformer-s_8xb2-160k_ade20k-512x512.py'
model = dict(
    backbone=dict(arch='b', drop_path_rate=0.4,
                  init_cfg=dict(checkpoint='checkpoints/sgformer-b_in1k.pth')),
    decode_head=dict(in_channels=[96, 192, 384, 768]),
    auxiliary_head=dict(in_channels=384))
