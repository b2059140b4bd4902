"""The one family of errors that digitlab raises on purpose.

Every message is a sentence a user can act on; the command line and the
dashboard print it as it is, so callers never have to show a traceback.
"""


class DigitlabError(Exception):
    """Base class for every error digitlab raises deliberately."""


class DataUnavailableError(DigitlabError):
    """The MNIST files are missing and could not be downloaded.

    ``advice`` is the sentence that says what to do; ``attempts`` name each download tried and why it failed,
    for those who want the detail. The message holds both.
    """

    def __init__(self, advice: str, attempts: tuple[str, ...] = ()):
        details = "".join(f"\n  {attempt}" for attempt in attempts)
        super().__init__(f"{advice}\nDownload attempts:{details}" if attempts else advice)
        self.advice = advice
        self.attempts = attempts


class DataIntegrityError(DigitlabError):
    """A data file exists but its content is not the canonical MNIST content."""


class ImageError(DigitlabError):
    """An input image cannot be read or holds nothing to recognise."""


class NoDigitFoundError(ImageError):
    """The image was read, but it is blank or has too little ink to hold a digit."""


class ModelUnavailableError(DigitlabError):
    """A model's files are missing, damaged, or do not match the manifest."""
