"""The model and what a run depends on: the MLP (:mod:`.model`), losses, optimizers, learning-rate schedules,
metrics and callbacks by Keras name, the frozen :class:`~mlpjax.core.config.TrainConfig`, the training state and
Keras' ``model.summary()``. Pure functions over explicit pytrees; nothing here reads files or places arrays."""
