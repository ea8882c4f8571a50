"""numba's cache of the kernels is dropped when any kernel source changes (numba itself
only notices a change in the cached function's own file)."""

from pathlib import Path

from snnctl.engine.kernels.stale_cache import STAMP_NAME, drop_stale_cache, sources_digest


def _kernel_tree(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "config.py").write_text("ONE_SPIKE_RULES = ('off', 'winner')\n")
    tmp_path = tmp_path / "kernels"
    tmp_path.mkdir()
    (tmp_path / "present.py").write_text("def present(): return neurons.step()\n")
    (tmp_path / "neurons.py").write_text("def step(): return 1\n")
    cache = tmp_path / "__pycache__"
    cache.mkdir()
    for name in ("present.present-10.py311.nbi", "present.present-10.py311.1.nbc"):
        (cache / name).write_bytes(b"machine code")
    return tmp_path, tmp_path.parent / "config.py"


def test_a_change_in_another_kernel_file_drops_the_cached_code(tmp_path):
    tree, config = _kernel_tree(tmp_path)
    drop_stale_cache(tree, (config,))  # first import: no stamp yet, so nothing cached can be trusted
    assert (tree / "__pycache__" / STAMP_NAME).read_text() == sources_digest(tree, (config,))

    cached = tree / "__pycache__" / "present.present-10.py311.1.nbc"
    cached.write_bytes(b"machine code")
    assert drop_stale_cache(tree, (config,)) is False  # unchanged sources keep their cache
    assert cached.exists()

    (tree / "neurons.py").write_text("def step(): return 2\n")  # present.py itself unchanged
    assert drop_stale_cache(tree, (config,)) is True
    assert not cached.exists()
    assert (tree / "__pycache__" / STAMP_NAME).read_text() == sources_digest(tree, (config,))


def test_a_change_in_a_value_the_kernels_compile_in_drops_the_cached_code(tmp_path):
    tree, config = _kernel_tree(tmp_path)
    drop_stale_cache(tree, (config,))
    cached = tree / "__pycache__" / "present.present-10.py311.1.nbc"
    cached.write_bytes(b"machine code")

    config.write_text("ONE_SPIKE_RULES = ('winner', 'off')\n")  # the rule codes the kernels froze
    assert drop_stale_cache(tree, (config,)) is True
    assert not cached.exists()


def test_every_module_a_kernel_imports_from_outside_the_kernels_is_stamped():
    import ast

    from snnctl.engine.kernels.stale_cache import FROZEN_SOURCES, KERNEL_DIR

    root = KERNEL_DIR.parents[2]
    imported = {root / (node.module.replace(".", "/") + ".py")
                for source in KERNEL_DIR.glob("*.py") for node in ast.walk(ast.parse(source.read_text()))
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("snnctl.")
                and not node.module.startswith("snnctl.engine.kernels")}
    assert imported and imported <= set(FROZEN_SOURCES), sorted(map(str, imported - set(FROZEN_SOURCES)))


def test_the_package_stamp_matches_its_sources_after_import():
    import snnctl.engine.kernels as kernels

    kernel_dir = Path(kernels.__file__).parent
    stamp = kernel_dir / "__pycache__" / STAMP_NAME
    assert stamp.read_text() == sources_digest(kernel_dir)
