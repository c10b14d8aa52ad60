"""Training on the devices: the rows placed once (:mod:`.rows`), the pure steps (:mod:`.steps`), the compiled epoch
and evaluation (:mod:`.compiled`), the one epoch loop of every training (:mod:`.loop`), ``fit`` (:mod:`.train`) and
its result (:mod:`.result`), the memory estimate checked before anything is allocated (:mod:`.budget`), the device
mesh (:mod:`.mesh`) and several processes (:mod:`.distributed`)."""
