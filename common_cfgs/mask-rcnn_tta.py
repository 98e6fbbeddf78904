# Test-time augmentation of the Mask R-CNN recipes (tools/test.py --tta), as mmdet's *_tta.py
# configs: three scales and horizontal flips, detections merged by class-wise NMS. mmdet 3.3.0's
# DetTTAModel refuses masks; InstanceSegTTAModel (groupmix_backbones.engine) merges as it does
# and keeps each kept detection's mask.
tta_model = dict(type='InstanceSegTTAModel',
                 tta_cfg=dict(nms=dict(type='nms', iou_threshold=0.5), max_per_img=100))
tta_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='TestTimeAug',
         transforms=[[dict(type='Resize', scale=scale, keep_ratio=True)
                      for scale in [(1333, 800), (666, 400), (2000, 1200)]],
                     [dict(type='RandomFlip', prob=1.), dict(type='RandomFlip', prob=0.)],
                     [dict(type='LoadAnnotations', with_bbox=True, with_mask=True)],
                     [dict(type='PackDetInputs',
                           meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                                      'scale_factor', 'flip', 'flip_direction'))]]),
]
