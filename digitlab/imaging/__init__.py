"""From a picture to model input: decoding (``decode``), cleaning (``clean``) and normalising (``normalise``) an
image, the pipeline that runs them (``preprocess``), reading the result at a model's sizes (``sizes``), and
cutting a number into its digits (``segment``)."""
