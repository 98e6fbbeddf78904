# UperNet + auxiliary FCN head with FLatten-Swin-T on ADE20K, mmseg's transformer-backbone
# 160k recipe (AdamW 6e-5, weight decay 0.01, poly, 1500 warmup iterations, 8 GPUs x 2 images,
# no decay on norms and relative position bias tables).
_base_ = ['mmseg::swin/swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512.py',
          '../../common_cfgs/flatten-swin-tiny_dense.py']
model = dict(backbone={{_base_.backbone}}, decode_head=dict(in_channels=[96, 192, 384, 768]),
             auxiliary_head=dict(in_channels=384))
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'rel_pos_table': dict(decay_mult=0.)}))
