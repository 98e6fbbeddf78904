# FLatten-CSWin-B fine-tuned at 384x384 from the 224 model (cfgs/flatten_cswin_b_384.yaml,
# main_ema.py): 20 epochs plus 10 cooldown epochs at the minimum lr, 8 GPUs x 32, AdamW lr
# 5e-6 x 256 / 512 = 2.5e-6, no warmup, cosine to lr x 0.1, weight decay 1e-8, no clipping, drop
# path 0.7, EMA decay 0.99982, the 224 augmentation at 384, test resize to 438 and centre crop 384
# (TEST.CROP at its default). Starts from the converted 224 weights.
# Loading the 224 checkpoint, the key position encodings of stages 1-2 are interpolated to 384
# (bicubic, as the official fine-tune does).
_base_ = ['./flatten-cswin-base_8xb64_in1k.py', '../../common_cfgs/in1k-384px_pipelines.py']
model = dict(backbone=dict(arch='base_384', drop_path_rate=0.7))
train_dataloader = dict(batch_size=32, dataset=dict(pipeline={{_base_.train_pipeline_384px}}))
val_dataloader = dict(dataset=dict(pipeline={{_base_.test_pipeline_384px_crop}}))
test_dataloader = val_dataloader
optim_wrapper = dict(optimizer=dict(lr=2.5e-6, weight_decay=1e-8))
param_scheduler = [
    dict(type='CosineAnnealingLR', eta_min_ratio=0.1, by_epoch=True, end=20,
         convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=30)
auto_scale_lr = dict(base_batch_size=256)
load_from = 'checkpoints/flatten-cswin-base_in1k.pth'
