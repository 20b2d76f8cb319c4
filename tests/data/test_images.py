"""Image files to tensors: grey files stay one channel, 16-bit files are scaled, the header gives the decoded
shape, and bad paths (missing, a folder, not an image, an unranged mode) raise errors that name the file."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from dataset_writers import synthetic_photo
from lipsim_tm.data.images import image_shape, read_image


def pil_tensor(path, mode: str = "RGB") -> np.ndarray:
    """Reference reading, independent of the package: ``(1, C, H, W)`` float32 in [0, 1]."""
    array = np.asarray(Image.open(path).convert(mode), dtype=np.float32) / 255.0
    array = array[..., None] if array.ndim == 2 else array
    return array.transpose(2, 0, 1)[None]


def write(tmp_path, name: str, mode: str, size: tuple[int, int] = (40, 48)):
    path = tmp_path / name
    Image.fromarray(synthetic_photo(7, *size)).convert(mode).save(path)
    return path


def test_read_image_keeps_grey_files_one_channel_and_scales_16_bit(tmp_path):
    grey = read_image(write(tmp_path, "g.png", "L"))
    assert grey.shape == (1, 1, 40, 48)
    rgba = read_image(write(tmp_path, "c.png", "RGBA"))
    assert rgba.shape == (1, 3, 40, 48)
    np.testing.assert_allclose(rgba.numpy(), pil_tensor(tmp_path / "c.png"), atol=1e-7)
    values = np.array([[0, 65535], [32768, 1000]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "deep.png")
    deep = read_image(tmp_path / "deep.png")
    np.testing.assert_allclose(deep[0, 0].numpy(), values / 65535.0, rtol=1e-6)
    Image.fromarray(np.zeros((4, 4), dtype=np.float32)).save(tmp_path / "float.tiff")
    with pytest.raises(ValueError, match=r"float\.tiff has mode 'F' \(32-bit\) with no defined pixel range"):
        read_image(tmp_path / "float.tiff")


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "LA", "P", "I;16", "1", "CMYK"])
def test_image_shape_from_the_header_equals_what_read_image_decodes(tmp_path, mode):
    path = write(tmp_path, f"x.{'tiff' if mode == 'CMYK' else 'png'}", mode, (21, 34))
    assert image_shape(path) == tuple(read_image(path).shape[1:])


def test_bad_paths_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"image file not found: .*missing\.png"):
        read_image(tmp_path / "missing.png")
    with pytest.raises(IsADirectoryError, match="expected an image file, got the folder"):
        read_image(tmp_path)
    with pytest.raises(IsADirectoryError, match="expected an image file, got the folder"):
        image_shape(tmp_path)
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(ValueError, match=r"cannot decode image file .*notes\.png"):
        read_image(tmp_path / "notes.png")
