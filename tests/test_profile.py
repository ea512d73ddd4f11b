"""The step profile's arithmetic: each traced operation counts its own time once, nested
events (a loop's and its body's) not twice; names fall into the kinds the table prints."""

from benchmarks.profile import _kind, _self_times


def test_nested_events_count_their_own_time():
    events = [(0, 100, "while.1"), (10, 30, "MatMul.2"), (50, 20, "add_fusion"),
              (55, 5, "copy.3"), (120, 10, "MatMul.2")]
    own = _self_times(events)
    assert own == {"while.1": 50, "MatMul.2": 40, "add_fusion": 15, "copy.3": 5}
    assert sum(own.values()) == 110  # the thread's busy time, nothing counted twice


def test_touching_events_are_siblings_and_an_overlap_is_clipped():
    touching = _self_times([(0, 10, "a"), (10, 10, "b")])
    assert touching == {"a": 10, "b": 10}
    same_start = _self_times([(0, 10, "inner"), (0, 30, "outer")])  # the longer one holds
    assert same_start == {"outer": 20, "inner": 10}
    overlap = _self_times([(0, 10, "parent"), (5, 10, "late")])  # outlasts its parent
    assert overlap["parent"] == 5 and overlap["late"] == 10


def test_operation_names_fall_into_kinds():
    assert _kind("MatMul_1.8") == "matrix products"
    assert _kind("wrapped_broadcast.2") == "buffer fills and copies"
    assert _kind("add_multiply_fusion.1") == "fused element-wise work"
    assert _kind("broadcast_add_fusion.1") == "fused element-wise work"  # a bias added
    assert _kind("copy_bitcast_fusion.1") == "buffer fills and copies"
    assert _kind("SlinkyThreadPool::Await") == "waiting for the other thread"
    assert _kind("while.19") == "loops and dispatch"
    assert _kind("wrapped_add.3") == "fused element-wise work"  # a lone op, wrapped
    assert _kind("wrapped_transpose.1") == "buffer fills and copies"
    assert _kind("something-else") == "other"
