"""A sample's image, wherever it is stored: an image file, or a record of a RecordIO file."""

from src.data.image_io import ImageDecodeError, decode_rgb, load_rgb
from src.data.recordio import RecordIOError, read_image_bytes
from src.data.samples import sample_name


def load_sample_image(sample):
    """HxWx3 uint8 RGB; an unreadable file or record raises ``ImageDecodeError`` naming it."""
    if sample.offset is None:
        return load_rgb(sample.path)
    try:
        data = read_image_bytes(sample.path, sample.offset)
    except (OSError, RecordIOError) as err:
        raise ImageDecodeError(f"cannot read record {sample_name(sample)}: {err}") from err
    return decode_rgb(data, sample_name(sample))
