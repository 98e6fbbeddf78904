"""Run a tool of ours, or mmpretrain's, mmdet's or mmseg's, from any folder:

    python -m groupmix_backbones train CONFIG [ARGS]         # our tools/train.py
    python -m groupmix_backbones test CONFIG CHECKPOINT [ARGS]
    python -m groupmix_backbones misc/check_dataset CONFIG   # any script under tools/, no .py
    python -m groupmix_backbones mmdet::train CONFIG [ARGS]  # mmdet's own tools/train.py

``-m`` imports this package first, so a library's tool runs with our backbones registered and
our package references known: its config may inherit ours by ``groupmix_backbones::`` (mmengine
resolves ``_base_`` before it imports the config's ``custom_imports``).
An argument ``groupmix_backbones::RELATIVE`` is replaced by the path of that file of ours.
"""
import importlib.util
import os
import os.path as osp
import runpy
import sys

from .resources import PACKAGE, resource_path, resource_root

LIBRARIES = ('mmpretrain', 'mmdet', 'mmseg')


def tool_path(tool: str) -> str:
    """The script ``tool`` names: ``train``, ``misc/check_dataset``, ``mmdet::train``."""
    library, separator, name = tool.rpartition('::')
    script = f'tools/{name}.py'
    if not separator:
        return resource_path(script)
    if library not in LIBRARIES:
        raise SystemExit(f'{tool}: the library before :: must be one of {", ".join(LIBRARIES)}.')
    path = osp.join(osp.dirname(importlib.util.find_spec(library).origin), '.mim', script)
    if not osp.isfile(path):
        raise SystemExit(f'{tool}: {library} has no {script} in its installed .mim/ ({path}).')
    return path


def our_tools() -> list:
    tools = osp.join(resource_root(), 'tools')
    return sorted(osp.relpath(osp.join(folder, name), tools)[:-3]
                  for folder, _, names in os.walk(tools) for name in names
                  if name.endswith('.py') and not name.startswith('_'))


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ('-h', '--help'):
        print(__doc__.strip() + '\n\nOur tools: ' + ' '.join(our_tools()))
        return
    path = tool_path(argv[0])
    prefix = PACKAGE + '::'
    args = [resource_path(arg[len(prefix):]) if arg.startswith(prefix) else arg
            for arg in argv[1:]]
    sys.argv = [path] + args
    sys.path.insert(0, osp.dirname(path))  # as `python path` would: a tool's sibling modules
    runpy.run_path(path, run_name='__main__')


if __name__ == '__main__':
    main()
