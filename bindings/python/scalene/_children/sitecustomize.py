"""Run at the start of every Python process that a program profiled by
``scalene run`` starts (``scalene run`` puts this directory first on
PYTHONPATH; see scalene/children.py): starts profiling that process, then
runs the sitecustomize this one hides (Debian has one), as Python would
have.  Nothing here may break the child: every failure is silent."""


def _start():
    try:
        from scalene import children
        children.start_child()
    except Exception:
        pass


def _chain():
    import os
    import sys
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        import importlib.machinery
        import importlib.util
        path = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
        spec = importlib.machinery.PathFinder.find_spec("sitecustomize", path)
        if spec is None or spec.loader is None:
            return
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    except Exception:
        pass


_chain()
_start()
