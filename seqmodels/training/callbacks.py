"""The user's Keras callbacks, driven by the Trainer; a failure in their code is one line."""

from __future__ import annotations

from pathlib import Path

from seqmodels.errors import SeqmodelsError, describe


def keras_callbacks(callbacks: list | None, net, epochs: int, steps: int, optimizer=None):
    """A keras.callbacks.CallbackList over the user's callbacks for the loop to drive, or None;
    their self.model is the network carrying the loop's optimizer, to read."""
    if not callbacks:
        return None
    from seqmodels.backend import import_keras

    keras = import_keras()
    odd = [c for c in callbacks if not isinstance(c, keras.callbacks.Callback)]
    if odd:
        raise SeqmodelsError(f"`callbacks` must be keras.callbacks.Callback objects, not "
                             f"{type(odd[0]).__name__}")
    return _Guarded(_guarded_call(  # it calls each callback's set_model and set_params
        "set_model or set_params", keras.callbacks.CallbackList, list(callbacks), add_history=False,
        add_progbar=False, model=CallbackModel(net, optimizer), epochs=epochs, steps=steps,
        verbose=0))


class CallbackModel:
    """The network as the user's callbacks see it (their self.model): the network itself for
    everything (stop_training, save, weights), and the loop's optimizer to read, as trackers
    such as W&B's metrics logger read model.optimizer's learning rate and iterations. The
    network never carries the optimizer: its saved files would hold Adam's slots."""

    def __init__(self, net, optimizer) -> None:
        object.__setattr__(self, "_net", net)
        object.__setattr__(self, "_optimizer", optimizer and ReadOnlyOptimizer(optimizer))

    @property
    def optimizer(self):
        """The loop's optimizer, to read."""
        if self._optimizer is None:
            raise AttributeError("this network has no optimizer", name="optimizer")
        return self._optimizer

    def __getattr__(self, name: str):
        return getattr(self._net, name)

    def __setattr__(self, name: str, value) -> None:
        if name == "optimizer":
            raise AttributeError("a callback cannot replace model.optimizer", name="optimizer")
        setattr(self._net, name, value)


class ReadOnlyOptimizer:
    """An optimizer whose settings callbacks read but cannot set: seqmodels' loop sets the
    rate at every step from `lr`, `schedule` and `on_nan`, and would undo theirs."""

    def __init__(self, optimizer) -> None:
        object.__setattr__(self, "_optimizer", optimizer)

    @property
    def __class__(self):  # isinstance(it, keras.optimizers.Optimizer), as TensorBoard checks
        return type(self._optimizer)

    def __getattr__(self, name: str):
        return getattr(self._optimizer, name)

    def __setattr__(self, name: str, value) -> None:
        raise AttributeError(f"a callback cannot set model.optimizer.{name}", name="optimizer")


def _guarded_call(event: str, call, *args, **kwargs):
    """call(*args, **kwargs), a failure of the user's callback code turned into one line."""
    try:
        return call(*args, **kwargs)
    except (SeqmodelsError, KeyboardInterrupt):
        raise
    except BaseException as exc:  # sys.exit() or a bare BaseException is a failure too
        raise SeqmodelsError(_callback_failure(event, exc)) from exc


class _Guarded:
    """A CallbackList whose callbacks' failures become one line naming the callback's own code
    (their bugs are not seqmodels' tracebacks); attributes pass through."""

    def __init__(self, callbacks) -> None:
        self._callbacks = callbacks

    def __getattr__(self, name: str):
        attr = getattr(self._callbacks, name)
        if not name.startswith("on_") or not callable(attr):
            return attr

        return lambda *args, **kwargs: _guarded_call(name, attr, *args, **kwargs)


def _callback_failure(event: str, exc: BaseException) -> str:
    """What a failing callback did, where in its own code, and what seqmodels does not offer."""
    import traceback

    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    what = f"a Keras callback failed in {event}: {describe(exc)}{where}"
    if isinstance(exc, AttributeError) and getattr(exc, "name", None) == "optimizer":
        what += (" (seqmodels' loop owns the optimizer and sets the rate itself with `lr`, "
                 "`schedule` and `on_nan`; callbacks read model.optimizer, but those that "
                 "change it, such as LearningRateScheduler or ReduceLROnPlateau, do not apply)")
    if event.startswith("set_"):  # before training: nothing of the run is written yet
        return f"{what}; fix the callback, then train again"
    return f"{what}; the run keeps its last checkpoint: fix the callback, then `resume` it"


def logs(row: dict) -> dict:
    """Keras callback logs of a history row: loss, val_loss, the task's metrics, lr, ..."""
    return {k: v for k, v in row.items() if k not in ("epoch", "step")}
