"""One training process for the --strategy tests: python distributed_worker.py SPEC.json.

SPEC holds the train() arguments plus "devices" (logical CPU devices to split the CPU into,
which must happen before TensorFlow starts) and "dump" (an .npz for the per-step losses and
the returned model's weights). The tests start several of these at once, as a cluster would.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(spec_path: str) -> None:
    import numpy as np
    import tensorflow as tf

    spec = json.loads(open(spec_path, encoding="utf-8").read())
    if spec.get("devices", 1) > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * spec["devices"])

    import keras

    from seqmodels.data.config import DataConfig
    from seqmodels.lm.config import WindowConfig
    from seqmodels.lm.train import train
    from seqmodels.models.config import ModelConfig
    from seqmodels.training.config import RunOptions, TrainConfig

    losses = []
    fresh = spec.get("resume") is None
    settings = dict(spec.get("train", {}))
    windows = WindowConfig(seq_len=settings.pop("seq_len", 100))
    record = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: losses.append(logs["loss"]))
    run = train(
        DataConfig(corpus=spec["corpus"]) if fresh else None,
        ModelConfig(**spec["model"]) if fresh else None,
        TrainConfig(**settings) if fresh else None,
        windows if fresh else None,
        out=spec.get("out"), resume=spec.get("resume"),
        changes={"epochs": spec["epochs"]} if spec.get("epochs") else None,
        options=RunOptions(cache_dir=spec["cache"], callbacks=[record],
                           strategy=spec.get("strategy", "default"),
                           cluster=spec.get("workers_spec"),
                           worker_index=spec.get("worker_index")),
    )
    replicas = 0
    if spec.get("strategy") == "mirrored":  # the devices train()'s MirroredStrategy found
        replicas = tf.distribute.MirroredStrategy().num_replicas_in_sync
    np.savez(spec["dump"], losses=np.array(losses), path=str(run.path), replicas=replicas,
             epochs=np.array([r["epoch"] for r in run.history]),
             **{f"w{i}": w for i, w in enumerate(run.model.network.get_weights())})


if __name__ == "__main__":
    main(sys.argv[1])
