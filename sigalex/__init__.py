"""sigalex: EEG and speech recordings → time-frequency images → AlexNet.

The public API:

- :func:`spectrogram` / :func:`to_image`: one signal → an RGB image (uint8 array / PIL).
- :class:`ImageFrontend`: batched windows ``(batch, n_channels, n_times)`` → images
  ``(batch, 3, size, size)`` on the windows' device.
- :mod:`sigalex.transforms`: ``stft``, ``mel``, ``cwt``, ``hilbert`` (functions and modules).
- :mod:`sigalex.render`: scaling, normalisation, channel fusion, colormaps, PNG output.
- :func:`load_recording` and :class:`Recording`: reading signal files.
"""

__version__ = "0.1.0"

from .errors import ConfigError, DataError, ParameterError, SigalexError
from .frontend import ImageFrontend, spectrogram, to_image
from .io import Annotation, Recording, load_recording
from .render import Render, save_png
from .transforms import available_transforms

__all__ = [
    "Annotation",
    "ConfigError",
    "DataError",
    "ImageFrontend",
    "ParameterError",
    "Recording",
    "Render",
    "SigalexError",
    "__version__",
    "available_transforms",
    "load_recording",
    "save_png",
    "spectrogram",
    "to_image",
]
