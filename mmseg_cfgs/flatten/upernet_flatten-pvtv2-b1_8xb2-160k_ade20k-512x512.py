_base_ = './upernet_flatten-pvtv2-b0_8xb2-160k_ade20k-512x512.py'
model = dict(
    backbone=dict(arch='b1',
                  init_cfg=dict(checkpoint='checkpoints/flatten-pvtv2-b1_in1k.pth')),
    decode_head=dict(in_channels=[64, 128, 320, 512]),
    auxiliary_head=dict(in_channels=320))
