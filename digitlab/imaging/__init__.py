"""From a picture to model input: decoding and normalising an image (``preprocess``), cutting a number into
digits (``segment``) and the affine warps both build on (``warp``)."""
