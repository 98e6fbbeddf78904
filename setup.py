from setuptools import find_packages, setup

setup(
    name='groupmix_backbones',
    version='0.1.0',
    description='GroupMixFormer, SG-Former, FLatten and unified token-mixer backbones '
    'for mmpretrain, mmdet and mmseg',
    packages=find_packages(include=['groupmix_backbones', 'groupmix_backbones.*']),
    python_requires='>=3.9',
    install_requires=['mmengine==0.10.7', 'mmcv==2.1.0', 'mmdet==3.3.0', 'mmsegmentation==1.2.2',
                      'mmpretrain==1.2.0', 'timm>=1.0,<2'],
)
