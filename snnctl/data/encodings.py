"""How gray images become input rates: optional deskewing (handwritten digits), an
optional per-image percentile window, optional CLAHE, an optional power law, then either
the gray values themselves (``rate``), ON and OFF channels of a centre-surround
difference of Gaussians (``on-off``) or both (``rate+on-off``), and optionally one
Euclidean length. docs/mammo.md
shows the mammogram ones, docs/accuracy.md (*Deskewed digits*) what deskewing does for
digits.

- ``deskew: true``: each image sheared so that its slant is gone, its centre of mass in the
  middle (LeCun et al. 1998); the four MNIST files use it.
- ``gamma: G``: each grey level ``g`` in [0, 1] becomes ``g ** G`` (after the window and
  CLAHE). fashion-400.yaml and fashion-6400.yaml take the square root: a dark garment's
  dim cloth is lifted towards its bright seams and outline, so its shape counts more than
  its shade (docs/accuracy.md, *A square root for Fashion-MNIST*). mammo-study.yaml
  squares them: a finding's few grey levels above the tissue count more than the tissue's
  own range (docs/mammo.md, *A power law on the grey levels*).

A mammogram is low in contrast: almost every pixel of breast tissue is mid-grey, so
Poisson coding of raw gray values gives every image nearly the same rates.

- ``normalize: percentile`` maps the 1st and 99th percentiles of the breast's pixels to
  0 and 1 (clipped), so every image uses the whole rate range.
- ``clahe: true``: contrast-limited adaptive histogram equalization (Zuiderveld 1994),
  scikit-image's ``equalize_adapthist``.
- ``encoding: on-off``: the image filtered by a difference of Gaussians (centre sigma 1,
  surround sigma 2 pixels, as Kheradpisheh et al. 2018 and Mozafari et al. 2019), its
  positive part the ON channel and its negative part the OFF channel, both divided by
  the response to a step edge of half the gray range (so such an edge, or a bright
  speck, reaches the highest rate) and clipped to 1. Edges, specks and texture spike,
  flat grey does not, and an image with more structure sends more spikes. The input
  layer doubles: ON pixels first, then OFF pixels. In a view with air around the breast
  the filters see the breast only (normalized convolution, Knutsson & Westin 1993), and
  a thin band along its outline sends nothing: the skin line is the strongest edge of
  every view and says nothing about a finding.
- ``encoding: rate+on-off``: the gray values, then the ON and OFF channels of the whole
  image beside them (no mask: an outline is part of a garment's shape), three input
  populations. At 6,400 neurons on Fashion-MNIST they raise the vote by 1.8 points over
  the grey levels alone, at 400 they cost it a point (docs/accuracy.md, *ON and OFF
  channels at 6,400 neurons*).
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from snnctl.config import Config
from snnctl.data.dataset import Dataset, pixel_scale

# Kheradpisheh et al. (2018): DoG filters with centre and surround sigmas of 1 and 2.
CENTRE_SIGMA = 1.0
SURROUND_SIGMA = 2.0
# Gaussian kernels are cut at this many sigmas (scipy.ndimage's default truncate).
TRUNCATE = 4.0
# The ON/OFF rate is 1 at the response to a step edge of this height (in gray-range
# units): one scale for every image, so that the amount of structure, not only its
# layout, shows in the rates. (A per-image scale would equalize a normal breast and one
# with a calcification cluster; on the synthetic set it codes the classes worse.)
FULL_RATE_EDGE = 0.5
WINDOW_PERCENTILES = (0.01, 0.99)
# Images deskewed or filtered at a time: the sampling grid of 10,000 MNIST digits is 63
# MB, their difference of Gaussians some hundreds of MB in float64 (all 60,000 at once
# took 8 GB, and three runs side by side more than the machine's memory).
CHUNK_IMAGES = 10_000
# Pixels at the image's darkest value are background (air), not breast, unless they are
# nearly all of it (a patch of tissue only).
MIN_BREAST_SHARE = 0.05
# For the ON/OFF filters, air is every pixel within AIR_LEVEL of the gray range above the
# image's darkest value (resizing smooths the outline, and air is noisy), where that value
# is black (at most AIR_BLACK) and such pixels are at least MIN_AIR_SHARE of the image:
# a patch of tissue, even with dark fat in it, has no air.
AIR_LEVEL = 0.02
AIR_BLACK = 0.05
MIN_AIR_SHARE = 0.05
# Pixels of breast this close to the air (in pixels) send no ON/OFF input: the outline.
OUTLINE_WIDTH = 2
# A breast on air keeps most of its pixels inside that band; thin shapes on a black page
# (a handwritten digit) keep few, and such an image is filtered unmasked: its strokes'
# edges are what it has to say.
MIN_INSIDE_SHARE = 0.5


def is_plain(config: Config) -> bool:
    """True when the images go in as they are (no deskewing, no window, no CLAHE, no gamma,
    rate coding, no length)."""
    return (not config.deskew and config.normalize == "none" and not config.clahe and config.gamma == 1.0
            and config.encoding == "rate" and config.input_length is None)


def scaled_to_length(rates: torch.Tensor, length: float) -> torch.Tensor:
    """Rates [n, n_inputs] with each row scaled to Euclidean ``length`` (a row of zeros stays
    zero). The first spike of a trained layer goes to the neuron with the largest cosine
    between its weights and the image (docs/accuracy.md), but STDP moves the winner toward
    the image's own rates, so bright images pull the fields harder than faint ones; k-means
    on images of unit length (Coates & Ng 2011) weighs every image alike."""
    lengths = torch.linalg.vector_norm(rates, dim=1, keepdim=True)
    return torch.where(lengths > 0, rates * (length / lengths.clamp(min=torch.finfo(rates.dtype).tiny)), rates)


def deskew_maps(planes: torch.Tensor) -> torch.Tensor:
    """The shears of :func:`deskewed` for images [n, 1, size, size], as ``affine_grid``
    maps [n, 2, 3], which send an output position (x, y) in [-1, 1] to where it reads the
    input: x + slant y, moved by the centre of mass's distance from the middle."""
    size = planes.shape[-1]
    positions = torch.arange(size, dtype=torch.float32)
    ink = planes.sum(dim=(1, 2, 3))
    mass = ink.clamp(min=torch.finfo(torch.float32).tiny)
    row_ink, column_ink = planes.sum(dim=(1, 3)), planes.sum(dim=(1, 2))
    row_centre = (row_ink * positions).sum(dim=1) / mass
    column_centre = (column_ink * positions).sum(dim=1) / mass
    rows = positions.view(1, -1) - row_centre.view(-1, 1)
    columns = positions.view(1, -1) - column_centre.view(-1, 1)
    row_variance = (row_ink * rows ** 2).sum(dim=1) / mass
    covariance = (planes[:, 0] * rows.unsqueeze(2) * columns.unsqueeze(1)).sum(dim=(1, 2)) / mass
    slant = covariance / row_variance.clamp(min=torch.finfo(torch.float32).tiny)
    maps = torch.zeros(len(planes), 2, 3)
    maps[:, 0, 0] = maps[:, 1, 1] = 1.0
    maps[:, 0, 1] = torch.where(row_variance > 0, slant, torch.zeros_like(slant))
    middle = (size - 1) / 2
    maps[:, 0, 2] = (column_centre - middle) * 2 / size
    maps[:, 1, 2] = (row_centre - middle) * 2 / size
    maps[ink <= 0] = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])  # a blank image stays
    return maps


def deskewed(images: torch.Tensor, input_size: int) -> torch.Tensor:
    """Images [n, pixels] in [0, 1] with their slant sheared away and their centre of mass
    moved to the image's middle: the moment-based deskewing of handwritten digits (LeCun
    et al. 1998; k-means with 100 centroids on MNIST goes from 88.9% to 94.3% with it,
    docs/accuracy.md). The shear is the regression of a pixel's column on its row, weighted
    by the gray levels (covariance over the rows' variance), sampled bilinearly; a blank
    image stays as it is."""
    planes = images.reshape(-1, 1, input_size, input_size).float()
    out = torch.empty_like(planes)
    for start in range(0, len(planes), CHUNK_IMAGES):
        chunk = planes[start:start + CHUNK_IMAGES]
        grid = torch.nn.functional.affine_grid(deskew_maps(chunk), list(chunk.shape), align_corners=False)
        out[start:start + len(chunk)] = torch.nn.functional.grid_sample(chunk, grid, mode="bilinear",
                                                                         padding_mode="zeros", align_corners=False)
    return out.reshape(images.shape)


def percentile_window(images: torch.Tensor) -> torch.Tensor:
    """Each image [n, pixels] in [0, 1] linearly mapped so that the 1st and 99th
    percentiles of its breast pixels (those brighter than its darkest value, which is the
    background) become 0 and 1, clipped to [0, 1]."""
    windowed = torch.empty_like(images)
    for index, image in enumerate(images):
        breast = image[image > image.min()]
        if breast.numel() < MIN_BREAST_SHARE * image.numel():
            breast = image
        low, high = torch.quantile(breast, torch.tensor(WINDOW_PERCENTILES, dtype=image.dtype)).tolist()
        spread = high - low
        windowed[index] = (image - low) / spread if spread > 0 else torch.zeros_like(image)
    return windowed.clamp_(0.0, 1.0)


def clahe(images: torch.Tensor, input_size: int) -> torch.Tensor:
    """Contrast-limited adaptive histogram equalization of each image (scikit-image's
    ``equalize_adapthist`` with its defaults: tiles of 1/8 of the image, clip limit 0.01)."""
    from skimage.exposure import equalize_adapthist

    planes = images.reshape(-1, input_size, input_size).double().numpy()
    equalized = np.stack([equalize_adapthist(plane) for plane in planes]) if len(planes) else planes
    return torch.from_numpy(equalized).float().reshape(images.shape)


def gaussian_kernel(sigma: float) -> torch.Tensor:
    """The normalized 1-D Gaussian of ``sigma`` pixels, radius ``int(4 sigma + 0.5)``
    (scipy.ndimage.gaussian_filter's kernel)."""
    radius = int(TRUNCATE * sigma + 0.5)
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    return kernel / kernel.sum()


def gaussian_blur(planes: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian filtering of ``[n, h, w]`` planes, edges extended by their
    nearest pixel (scipy.ndimage's ``mode='nearest'``)."""
    kernel = gaussian_kernel(sigma).to(planes.dtype)
    radius = (len(kernel) - 1) // 2
    blurred = planes.unsqueeze(1)
    for weights, padding in ((kernel.view(1, 1, -1, 1), (0, 0, radius, radius)),
                             (kernel.view(1, 1, 1, -1), (radius, radius, 0, 0))):
        blurred = torch.nn.functional.conv2d(torch.nn.functional.pad(blurred, padding, mode="replicate"), weights)
    return blurred.squeeze(1)


def difference_of_gaussians(planes: torch.Tensor, inside: torch.Tensor | None = None) -> torch.Tensor:
    """Centre minus surround: positive on a bright spot or the bright side of an edge,
    negative on a dark one, zero on flat grey. With ``inside`` (a [n, h, w] mask), each
    blur is a normalized convolution over the masked pixels only (Knutsson & Westin 1993:
    blur(image x mask) / blur(mask)), so pixels outside do not make an edge, and the
    response outside is 0."""
    planes = planes.double()
    if inside is None:
        return gaussian_blur(planes, CENTRE_SIGMA) - gaussian_blur(planes, SURROUND_SIGMA)
    weights = inside.double()
    masked = planes * weights
    blurred = [gaussian_blur(masked, sigma) / gaussian_blur(weights, sigma).clamp(min=1e-6)
               for sigma in (CENTRE_SIGMA, SURROUND_SIGMA)]
    return (blurred[0] - blurred[1]) * weights


def breast_inside(images: torch.Tensor, input_size: int) -> torch.Tensor | None:
    """The breast of each image [n, pixels] as a mask [n, input_size, input_size], less a
    band of ``OUTLINE_WIDTH`` pixels along the air; None when no image has air (patches
    of tissue): pixels within ``AIR_LEVEL`` of the gray range above an image's darkest
    value are air when that value is black (``AIR_BLACK``) and they are at least
    ``MIN_AIR_SHARE`` of the image. An image whose band would take more than half its
    non-air pixels (``MIN_INSIDE_SHARE``: strokes on a black page, not a breast) is left
    whole."""
    low, high = images.min(dim=1, keepdim=True).values, images.max(dim=1, keepdim=True).values
    air = (images <= low + AIR_LEVEL * (high - low)) & (low <= AIR_BLACK)
    air &= air.float().mean(dim=1, keepdim=True) >= MIN_AIR_SHARE
    if not air.any():
        return None
    width = 2 * OUTLINE_WIDTH + 1
    near_air = torch.nn.functional.max_pool2d(air.float().reshape(-1, 1, input_size, input_size), width, stride=1,
                                              padding=OUTLINE_WIDTH)
    inside = near_air.squeeze(1) == 0
    solid = inside.flatten(1).sum(dim=1) >= MIN_INSIDE_SHARE * (~air).sum(dim=1)
    if not solid.any():
        return None
    return inside | ~solid.view(-1, 1, 1)


@functools.cache
def edge_response() -> float:
    """The peak of :func:`difference_of_gaussians` on a step edge from 0 to 1 (about 0.166)."""
    width = 4 * int(TRUNCATE * SURROUND_SIGMA + 0.5)
    step = torch.zeros(1, width, width)
    step[:, :, width // 2:] = 1.0
    return float(difference_of_gaussians(step).max())


def on_off(images: torch.Tensor, input_size: int, inside: torch.Tensor | None = None) -> torch.Tensor:
    """ON and OFF channels [n, 2 * pixels] of images [n, pixels]: the positive and the
    negative part of the difference of Gaussians (within the mask ``inside``, if given),
    divided by its response to a step edge of height ``FULL_RATE_EDGE``, clipped to [0, 1];
    ``CHUNK_IMAGES`` at a time."""
    channels = torch.empty(len(images), 2 * input_size * input_size)
    full_rate = FULL_RATE_EDGE * edge_response()
    for start in range(0, len(images), CHUNK_IMAGES):
        stop = start + CHUNK_IMAGES
        planes = images[start:stop].reshape(-1, input_size, input_size)
        response = difference_of_gaussians(planes, None if inside is None else inside[start:stop]).flatten(1)
        response = response / full_rate
        channels[start:stop] = torch.cat([response.clamp(min=0.0), (-response).clamp(min=0.0)], dim=1).clamp_(max=1.0)
    return channels


def encode(images: torch.Tensor, config: Config) -> torch.Tensor:
    """Images [n, input_size^2] (float in [0, 1] or uint8) as the network's input rates,
    [n, n_inputs]: deskewing, window, CLAHE, gamma, encoding and length in that order, as
    ``config`` says (in [0, 1] but with ``input_length``, which may scale a faint image's
    rates above 1)."""
    if is_plain(config):
        return images
    rates = images.float() * pixel_scale(images)
    if config.deskew:
        rates = deskewed(rates, config.input_size)
    inside = breast_inside(rates, config.input_size) if config.encoding == "on-off" else None
    if config.normalize == "percentile":
        rates = percentile_window(rates)
    if config.clahe:
        rates = clahe(rates, config.input_size)
    if config.gamma != 1.0:
        rates = rates ** config.gamma
    if config.encoding == "on-off":
        rates = on_off(rates, config.input_size, inside)
    elif config.encoding == "rate+on-off":
        rates = torch.cat([rates.float(), on_off(rates, config.input_size)], dim=1)
    if config.input_length is not None:
        rates = scaled_to_length(rates, config.input_length)
    return rates.contiguous()


def encode_dataset(dataset: Dataset, config: Config) -> Dataset:
    """The dataset with its images encoded (:func:`encode`); the same object when plain."""
    if is_plain(config):
        return dataset
    return Dataset(encode(dataset.images, config), dataset.labels, dataset.class_names, dataset.sources,
                   dataset.groups)


def channel_caption(channels: int) -> str:
    """How figures name an image's input channels side by side: " ON | OFF" (``on-off``),
    " grey | ON | OFF" (``rate+on-off``), "" for one."""
    return {2: " ON | OFF", 3: " grey | ON | OFF"}.get(channels, "")


def input_planes(values: torch.Tensor, input_size: int) -> torch.Tensor:
    """Per-input values [..., n_inputs] as images [..., input_size, channels * input_size]:
    the channels (ON, OFF; or grey, ON, OFF) side by side, for figures."""
    channels = values.shape[-1] // (input_size * input_size)
    planes = values.reshape(*values.shape[:-1], channels, input_size, input_size)
    return planes.transpose(-3, -2).reshape(*values.shape[:-1], input_size, channels * input_size)
