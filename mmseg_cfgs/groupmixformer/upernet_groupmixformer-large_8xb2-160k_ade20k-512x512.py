_base_ = './upernet_groupmixformer-small_8xb2-160k_ade20k-512x512.py'
model = dict(
    backbone=dict(arch='large', drop_path_rate=0.4,
                  init_cfg=dict(checkpoint='checkpoints/groupmixformer-large_in1k.pth')),
    decode_head=dict(in_channels=[240, 320, 360, 480]),
    auxiliary_head=dict(in_channels=360))
