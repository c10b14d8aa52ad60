"""Drawing and predicting digits: MNIST-style preprocessing (:mod:`.preprocess`), toolkit-neutral recognition
(:mod:`.recognize`), predictions from files (:mod:`.predict`) and the Tk window (:mod:`.window`)."""
