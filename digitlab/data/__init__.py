"""MNIST itself: downloading and verifying it (``mnist``), the IDX format (``idx``) and its statistics (``stats``)."""
