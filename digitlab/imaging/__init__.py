"""From a picture to model input: decoding, cleaning and normalising an image (``preprocess``), and cutting a
number into its digits (``segment``)."""
