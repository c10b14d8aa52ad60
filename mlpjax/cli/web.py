"""``mlpjax draw --web``: the draw page in a browser (:mod:`mlpjax.draw.web`), for a run directory or a quick model."""

from __future__ import annotations

import argparse

from mlpjax.errors import UserInputError


def run_web(args: argparse.Namespace) -> int:
    """Serve the draw page for ``args.directory`` (or a quick model) on ``--host``/``--port`` until Ctrl-C.

    Called by ``mlpjax draw`` once its model flags are checked; refuses ``--host``/``--port`` without ``--web``."""
    from mlpjax import data
    from mlpjax.draw import recognize, web

    if not args.web:
        given = " and ".join(f for f, v in (("--host", args.host), ("--port", args.port)) if v is not None)
        raise UserInputError(f"{given} {'are' if ' and ' in given else 'is'} for the page in a browser: add --web")
    host = web.DEFAULT_HOST if args.host is None else args.host
    port = web.DEFAULT_PORT if args.port is None else args.port
    if args.directory:
        from mlpjax.runs import checkpoint

        ckpt = checkpoint.restore(args.directory, best=args.best)
        classifier, dataset = ckpt.classifier, ckpt.config.dataset
        recognize.check_model(classifier)
        spec = data.DATASETS.get(dataset)
        names = spec.class_names if spec is not None else ()
        m = ckpt.model_config
        about = (
            f"{args.directory}: {dataset}, epoch {ckpt.epoch}{' (best)' if args.best else ''}, MLP "
            + " -> ".join(str(w) for w in m.widths())
            + f" ({m.activation})"
        )
    else:
        classifier = recognize.train_quick_model(dataset=data.load_dataset("mnist", args.data_dir))
        names, about = (), "a quick model: 1 epoch of mnist (mlpjax draw --train-quick)"
    web.serve(classifier, host, port, class_names=names, about=about, log=lambda line: print(line, flush=True))
    return 0
