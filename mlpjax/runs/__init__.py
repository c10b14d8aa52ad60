"""A run on disk: its directory (:mod:`.run`: start, resume, evaluate), its Orbax checkpoints (:mod:`.checkpoint`)
through the one Orbax I/O module (:mod:`.orbax_io`), the directory's lock (:mod:`.lock`), the logs beside
``metrics.json`` (:mod:`.logs`), exports (:mod:`.export`) and predictions of many inputs (:mod:`.predictions`)."""
