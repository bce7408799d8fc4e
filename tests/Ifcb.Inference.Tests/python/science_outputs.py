"""Reads RUN's result files back with the libraries IFCB users read them with (Debian's h5py and pandas).

  science_outputs.py h5 FILE.h5
      Prints JSON: the metadata attributes (strings decoded, integers as integers), output_classes,
      output_classes_thresholded, class_thresholds (NaN as null) and class_labels.
  science_outputs.py pyifcb-v4 FILE.csv
      Reads a class-scores CSV the way pyifcb's ClassScoresFile._class_scores_v4 does (joefutrelle/pyifcb, branch
      class_scores_v4_csv): pandas.read_csv(index_col='pid'), the ROI number from the pid's digits after its last
      underscore, every other column a class. Prints JSON: roi_numbers, class_labels, scores.
"""
import json
import math
import sys

import numpy


def plain(value):
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, numpy.integer):
        return int(value)
    if isinstance(value, numpy.floating):
        return float(value)
    return value


def inspect_h5(path):
    import h5py

    with h5py.File(path, "r") as f:
        attrs = {k: plain(v) for k, v in f["metadata"].attrs.items()}
        kinds = {k: type(plain(v)).__name__ for k, v in f["metadata"].attrs.items()}
        out = dict(
            attrs=attrs,
            attr_types=kinds,
            output_classes=[int(v) for v in f["output_classes"][:]],
            output_classes_thresholded=[int(v) for v in f["output_classes_thresholded"][:]],
            thresholded_dtype=str(f["output_classes_thresholded"].dtype),
            class_thresholds=[None if math.isnan(v) else float(v) for v in f["class_thresholds"][:]],
            class_labels=[plain(v) for v in f["class_labels"][:]],
        )
    print(json.dumps(out))


def read_pyifcb_v4(path):
    import pandas as pd

    # The steps of pyifcb's _class_scores_v4 and _cs2df, written out here (pyifcb itself is not installed).
    df = pd.read_csv(path, index_col="pid")
    df.index = df.index.str.extract(r"_(\d+)$")[0]
    df.index.name = "roi_number"
    roi_numbers = df.index.astype(int)
    class_labels = df.columns.tolist()
    frame = pd.DataFrame(df.values, columns=class_labels).set_index(roi_numbers)
    print(json.dumps(dict(
        roi_numbers=[int(v) for v in frame.index],
        class_labels=[str(c) for c in frame.columns],
        scores=[[float(v) for v in row] for row in frame.values],
    )))


if __name__ == "__main__":
    if sys.argv[1] == "h5":
        inspect_h5(sys.argv[2])
    elif sys.argv[1] == "pyifcb-v4":
        read_pyifcb_v4(sys.argv[2])
    else:
        sys.exit("unknown command " + sys.argv[1])
