"""The tutorial's worked examples: backpropagation by hand (:mod:`.backprop`) checked against ``jax.grad``
(:mod:`.gradcheck`), and the small examples of ``mlpjax basics`` (:mod:`.basics`)."""
