_base_ = './upernet_groupmixformer-small_8xb2-160k_ade20k-512x512.py'
model = dict(
    backbone=dict(arch='mini', drop_path_rate=0.1,
                  init_cfg=dict(checkpoint='checkpoints/groupmixformer-mini_in1k.pth')),
    decode_head=dict(in_channels=[40, 80, 160, 160]),
    auxiliary_head=dict(in_channels=160))
