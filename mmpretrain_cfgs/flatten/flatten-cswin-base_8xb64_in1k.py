# FLatten-CSWin-B: 8 GPUs x 64, lr 5e-4, weight decay 0.1, drop path 0.5, EMA decay 0.99982.
_base_ = './flatten-cswin-tiny_8xb256_in1k.py'
model = dict(backbone=dict(arch='base', drop_path_rate=0.5), head=dict(in_channels=768))
train_dataloader = dict(batch_size=64)
optim_wrapper = dict(optimizer=dict(lr=5e-4, weight_decay=0.1))
custom_hooks = [dict(type='EMAHook', momentum=1.8e-4, priority='ABOVE_NORMAL')]
auto_scale_lr = dict(base_batch_size=512)
