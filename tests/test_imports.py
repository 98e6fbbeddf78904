"""The package's import arrows run one way: no module imports, directly or through others, a
module that imports it back (function-level imports included; a package importing its own
submodules to re-export them is no circle)."""
import ast
import os
import os.path as osp

from conftest import REPO

PACKAGE = 'groupmix_backbones'


def module_files():
    for folder, _, files in os.walk(osp.join(REPO, PACKAGE)):
        for name in files:
            if name.endswith('.py'):
                path = osp.join(folder, name)
                module = osp.relpath(path, REPO)[:-3].replace(os.sep, '.')
                yield module.removesuffix('.__init__'), path


def import_graph():
    """module -> the package's modules it imports anywhere in its file."""
    files = dict(module_files())
    graph = {}
    for module, path in files.items():
        package = module if path.endswith('__init__.py') else module.rpartition('.')[0]
        targets = set()
        for node in ast.walk(ast.parse(open(path).read())):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ''
                if node.level:
                    parent = package.rsplit('.', node.level - 1)[0] if node.level > 1 else package
                    base = f'{parent}.{base}'.rstrip('.')
                for alias in node.names:
                    targets.add(f'{base}.{alias.name}' if f'{base}.{alias.name}' in files
                                else base)
            elif isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
        graph[module] = {target for target in targets if target in files and target != module
                         and not target.startswith(module + '.')}
    return graph


def test_no_import_circle():
    graph = import_graph()
    assert graph['groupmix_backbones.runtime'] >= {'groupmix_backbones.data_checks'}
    done, circles = set(), []

    def visit(module, path):
        if module in path:
            circles.append(path[path.index(module):] + [module])
            return
        if module in done:
            return
        for target in sorted(graph[module]):
            visit(target, path + [module])
        done.add(module)

    for module in sorted(graph):
        visit(module, [])
    assert not circles, circles
