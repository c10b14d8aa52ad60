"""Datasets: the registry by name (:mod:`.datasets`), safe IDX reading (:mod:`.idx`), the user's files and
scikit-learn's tables (:mod:`.tables`), folders of images (:mod:`.images`), tensorflow-datasets' sets
(:mod:`.tfds_sets`), the digest a run records of its data (:mod:`.digest`) and Keras' validation split
(:mod:`.split`). The names below are the wing's
public API: ``from mlpjax import data; data.load_dataset("digits")``, ``data.load_dataset("table.csv")``."""

from mlpjax.data.datasets import (
    DATA_DIR_ENV,
    DATASETS,
    FASHION_CLASSES,
    IDX_FILES,
    Dataset,
    DatasetSpec,
    check_data_dir,
    check_options,
    class_labels,
    features,
    get_spec,
    idx_files,
    is_path,
    level_values,
    load_dataset,
    load_digits,
    load_file,
    load_idx_folder,
    load_mnist_like,
    load_quadrants,
    load_tfds,
    load_tfds_set,
    make_dataset,
    to_levels,
)
from mlpjax.data.digest import Digest, check_unchanged
from mlpjax.data.idx import read_idx, read_idx_header
from mlpjax.data.images import check_image_size
from mlpjax.data.tables import FILE_SUFFIXES, check_label_column, is_file_name, is_table_name, read_rows

__all__ = [
    "DATA_DIR_ENV",
    "DATASETS",
    "FASHION_CLASSES",
    "FILE_SUFFIXES",
    "IDX_FILES",
    "Dataset",
    "DatasetSpec",
    "Digest",
    "check_data_dir",
    "check_image_size",
    "check_label_column",
    "check_options",
    "check_unchanged",
    "class_labels",
    "features",
    "get_spec",
    "idx_files",
    "is_file_name",
    "is_path",
    "is_table_name",
    "level_values",
    "load_dataset",
    "load_digits",
    "load_file",
    "load_idx_folder",
    "load_mnist_like",
    "load_quadrants",
    "load_tfds",
    "load_tfds_set",
    "make_dataset",
    "read_idx",
    "read_idx_header",
    "read_rows",
    "to_levels",
]
