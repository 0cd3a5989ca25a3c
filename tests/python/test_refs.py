"""libleak.refs.why_alive: labelled paths from classified roots (module, class, frame of a thread,
sys, external, garbage), on the scenarios of a leak hunt, on every version."""

import ctypes
import gc
import subprocess
import sys
import textwrap
import threading
import types
import weakref

import pytest

from libleak import refs


class Session:
    def __init__(self, size):
        self.data = bytes(size)


class Registry:
    entries = {}


def kinds(retention):
    return [path.root_kind for path in retention.paths]


def test_a_module_dict_cache_path_is_labelled():
    app = types.ModuleType("app_cache_for_test")
    sys.modules[app.__name__] = app
    try:
        app.CACHE = {"k42": Session(5 * 2 ** 20 - 100)}
        retention = refs.why_alive(app.CACHE["k42"].data)
        first = retention.paths[0]
        assert first.root_kind == "module" and first.root_name == "app_cache_for_test"
        assert first.labels == ["['CACHE']", "['k42']", ".data"]
        assert first.target is app.CACHE["k42"].data
        assert first.size == sys.getsizeof(app.CACHE["k42"].data)
        assert str(first) == "module app_cache_for_test: CACHE -> dict['k42'] -> Session.data -> bytes (5.0 MiB)"
    finally:
        del sys.modules[app.__name__]


def test_a_class_attribute_is_a_class_root():
    Registry.entries["x"] = Session(10)
    try:
        retention = refs.why_alive(Registry.entries["x"])
        assert retention.paths[0].root_kind == "class"
        assert retention.paths[0].root_name == "%s.Registry" % __name__
        assert str(retention.paths[0]).startswith("class %s.Registry: entries -> dict['x'] -> Session" % __name__)
    finally:
        Registry.entries.clear()


HOOKS = []


def test_a_closure_in_a_module_hook_list_capturing_a_bytearray():
    def install():
        payload = bytearray(2 ** 20 - 100)

        def hook():
            return len(payload)

        HOOKS.append(hook)

    install()
    try:
        target = HOOKS[0].__closure__[0].cell_contents
        path = refs.why_alive(target).paths[0]
        assert path.root_kind == "module" and path.root_name == __name__
        assert path.labels[:2] == ["['HOOKS']", "[0]"]
        assert "closure variable payload -> bytearray (1.0 MiB)" in str(path)
    finally:
        HOOKS.clear()


def test_a_module_exception_whose_traceback_holds_a_large_local():
    module = types.ModuleType("errors_for_test")
    sys.modules[module.__name__] = module
    exec(textwrap.dedent("""
        def fail():
            big_local = bytearray(2 * 2 ** 20 - 100)
            raise ValueError("kept")
        try:
            fail()
        except ValueError as error:
            LAST_ERROR = error
        """), module.__dict__)
    try:
        tb = module.LAST_ERROR.__traceback__
        while tb.tb_next is not None:
            tb = tb.tb_next
        big = tb.tb_frame.f_locals["big_local"]
        path = refs.why_alive(big).paths[0]
        assert path.root_kind == "module" and path.root_name == "errors_for_test"
        text = str(path)
        assert "LAST_ERROR -> ValueError.__traceback__ -> traceback" in text, text
        assert "local big_local -> bytearray (2.0 MiB)" in text, text
    finally:
        del sys.modules[module.__name__]


def test_an_object_held_only_by_a_c_reference_is_external():
    class Thing:
        pass

    def make():
        thing = Thing()
        ctypes.pythonapi.Py_IncRef(ctypes.py_object(thing))
        return weakref.ref(thing)

    ref = make()
    try:
        retention = refs.why_alive(ref())
        assert kinds(retention) == ["external"], retention
        assert retention.paths[0].unaccounted == 1
        assert "1 reference not held by Python objects" in str(retention)
    finally:
        ctypes.pythonapi.Py_DecRef(ctypes.py_object(ref()))


def test_a_local_of_a_sleeping_thread_names_the_thread_function_and_line():
    ready, stop = threading.Event(), threading.Event()
    found = {}

    def sleeper():
        held = bytearray(300001)
        found["held"] = weakref.ref(held) if False else id(held)
        ready.set()
        stop.wait()

    thread = threading.Thread(target=sleeper, name="sleepy-worker")
    thread.start()
    ready.wait()
    try:
        import libleak.objgraph as objgraph

        (held,) = [o for o in objgraph.at_addrs([found["held"]], all_objects=True)]
        retention = refs.why_alive(held)
        del held
        path = retention.paths[0]
        assert path.root_kind == "frame", retention
        assert "sleeper" in path.root_name and "thread sleepy-worker" in path.root_name
        line = sleeper.__code__.co_firstlineno + 4
        assert "test_refs.py:%d" % line in path.root_name, path.root_name
        assert str(path).endswith("held -> bytearray (%s)" % refs._format_size(sys.getsizeof(bytearray(300001))))
    finally:
        stop.set()
        thread.join()


def test_sys_last_traceback_holding_a_large_local(python):
    result = python("""
        import sys
        from libleak import refs
        def fail():
            huge = bytearray(3 * 2 ** 20 - 100)
            raise KeyError("x")
        try:
            fail()
        except KeyError:
            sys.last_type, sys.last_value, sys.last_traceback = sys.exc_info()
            if hasattr(sys, "last_exc"):
                sys.last_exc = sys.last_value
        def explain():
            tb = sys.last_traceback
            while tb.tb_next:
                tb = tb.tb_next
            return refs.why_alive(tb.tb_frame.f_locals["huge"]).paths[0]
        path = explain()
        print(path.root_kind, path)
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("sys sys: last_"), result.stdout
    assert "local huge -> bytearray (3.0 MiB)" in result.stdout


def test_an_unreachable_cycle_with_del_is_garbage():
    class Node:
        def __del__(self):
            pass

    def make():
        a, b = Node(), Node()
        a.other, b.other = b, a
        return weakref.ref(a)

    gc.disable()
    try:
        ref = make()
        retention = refs.why_alive(ref())
        assert kinds(retention) == ["garbage"], retention
        assert "unreachable cycle" in str(retention)
        del retention
    finally:
        gc.enable()
        gc.collect()
    assert ref() is None


def test_the_callers_frame_is_never_a_root():
    def hold():
        mine = bytearray(12345)
        return refs.why_alive(mine)

    retention = hold()
    assert retention.paths == []
    assert "nothing but the caller" in str(retention)


def test_a_module_path_is_preferred_to_a_frame():
    holder = types.ModuleType("holder_for_test")
    holder.VALUE = bytearray(777)
    ready, stop = threading.Event(), threading.Event()

    def keeper(value):
        ready.set()
        stop.wait()

    thread = threading.Thread(target=keeper, args=(holder.VALUE,))
    thread.start()
    ready.wait()
    try:
        sys.modules[holder.__name__] = holder
        retention = refs.why_alive(holder.VALUE, max_paths=3)
        assert retention.paths[0].root_kind == "module"
        assert "frame" in kinds(retention)
    finally:
        stop.set()
        thread.join()
        del sys.modules[holder.__name__]


def test_bad_input_is_refused():
    with pytest.raises(ValueError):
        refs.why_alive(object(), max_paths=0)
    with pytest.raises(TypeError):
        refs.why_alive(object(), max_paths="3")


def test_retained_size_counts_what_only_the_object_keeps_alive():
    class Holder:
        pass

    holder = Holder()
    holder.blobs = [bytearray(100000) for _ in range(10)]
    shared = bytearray(500000)
    holder.shared = shared  # also held by the local below: not retained by holder alone
    exclusive = sys.getsizeof(holder) + sys.getsizeof(holder.blobs) + 10 * sys.getsizeof(holder.blobs[0])
    retained = refs.retained_size(holder)
    assert exclusive <= retained < exclusive + 2000, (exclusive, retained)
    assert refs.retained_size(holder.blobs[0]) == sys.getsizeof(holder.blobs[0])
    del shared


def test_top_retainers_find_the_biggest_data_with_a_path():
    module = types.ModuleType("big_for_test")
    sys.modules[module.__name__] = module
    module.BIG = {i: bytearray(20000) for i in range(200)}
    try:
        rows = refs.top_retainers(5)
        # the test process holds other big things (pytest's, other tests'): BIG is among the first
        (row,) = [row for row in rows if row.object is module.BIG]
        assert row.retained_size >= 200 * 20000
        assert row.type_name == "dict"
        assert row.path.root_kind == "module" and row.path.root_name == "big_for_test"
        sizes = [row.retained_size for row in rows]
        assert sizes == sorted(sizes, reverse=True)
        assert "big_for_test" in str(row)
        with pytest.raises(ValueError):
            refs.top_retainers(-1)
    finally:
        del sys.modules[module.__name__]


def test_render_draws_the_paths(tmp_path):
    import xml.etree.ElementTree as ElementTree

    app = types.ModuleType("app_render_for_test")
    app.CACHE = {"k": Session(1000)}
    sys.modules[app.__name__] = app
    try:
        retention = refs.why_alive(app.CACHE["k"].data)
        svg = retention._repr_svg_()
        root = ElementTree.fromstring(svg)
        assert root.tag.endswith("svg")
        assert "CACHE" in svg and "Session" in svg
        png = tmp_path / "why.png"
        refs.render(retention.paths[0], str(png))
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        with pytest.raises(ValueError):
            refs.render(retention, str(tmp_path / "why.unknown"))
        assert not (tmp_path / "why.unknown").exists()
        with pytest.raises(TypeError):
            refs.render(5)
    finally:
        del sys.modules[app.__name__]


def test_the_exception_a_thread_is_handling_is_a_thread_root():
    ready, stop = threading.Event(), threading.Event()
    found = {}

    def handler():
        try:
            raise RuntimeError(bytearray(40000))
        except RuntimeError as error:
            found["payload"] = id(error.args[0])
            del error
            ready.set()
            stop.wait()

    thread = threading.Thread(target=handler, name="handling")
    thread.start()
    ready.wait()
    try:
        import libleak.objgraph as objgraph

        (payload,) = objgraph.at_addrs([found["payload"]], all_objects=True)
        retention = refs.why_alive(payload)
        del payload
        thread_paths = [p for p in retention.paths if p.root_kind == "thread"]
        assert thread_paths, retention
        assert "handling (the exception being handled)" in thread_paths[0].root_name
        assert thread_paths[0].labels[:1] == [".args"]
    finally:
        stop.set()
        thread.join()
