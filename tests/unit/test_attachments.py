"""Tests for PhotoStore: originals kept byte for byte, public copies and thumbnails stripped."""

from __future__ import annotations

import struct
import zlib
from io import BytesIO
from pathlib import Path

import pytest
from PIL import ExifTags, Image, ImageCms
from PIL.PngImagePlugin import PngInfo

from gridgov.core.errors import NotFound, Rejected
from gridgov.events.attachments import PhotoStore, StoredPhoto, Variant

RED = (220, 20, 20)
BLUE = (20, 20, 220)
# 29°52'5.88" N, 121°32'38.4" E (Ningbo) and 22°54'30" S, 43°11'47" W (Rio de Janeiro)
NINGBO_GPS: dict[int, object] = {1: "N", 2: (29.0, 52.0, 5.88), 3: "E", 4: (121.0, 32.0, 38.4)}
RIO_GPS: dict[int, object] = {1: "S", 2: (22.0, 54.0, 30.0), 3: "W", 4: (43.0, 11.0, 47.0)}
TAKEN_AT = "2026:11:27 10:00:00"
DEVICE = "GridPhone X9"
XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-'
    b'syntax-ns#"><rdf:Description exif:GPSLatitude="29,52.098N"/></rdf:RDF></x:xmpmeta>'
)


def _two_tone(size: tuple[int, int]) -> Image.Image:
    """Left half red, right half blue, so a rotation is visible in the pixels."""
    image = Image.new("RGB", size, BLUE)
    image.paste(RED, (0, 0, size[0] // 2, size[1]))
    return image


def _exif(*, orientation: int | None = None, gps: dict[int, object] | None = None) -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "GridPhone"
    exif[ExifTags.Base.Model] = DEVICE
    if orientation is not None:
        exif[ExifTags.Base.Orientation] = orientation
    if gps is not None:
        exif[ExifTags.IFD.GPSInfo] = gps
    exif[ExifTags.IFD.Exif] = {ExifTags.Base.DateTimeOriginal: TAKEN_AT}
    return exif


def _icc() -> bytes:
    """An embedded colour profile; phones write ones that name the maker."""
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _jpeg(
    size: tuple[int, int] = (40, 20),
    *,
    orientation: int | None = 6,
    gps: dict[int, object] | None = None,
) -> bytes:
    buffer = BytesIO()
    _two_tone(size).save(
        buffer,
        format="JPEG",
        quality=95,
        exif=_exif(orientation=orientation, gps=NINGBO_GPS if gps is None else gps),
        comment=b"uploaded by grid worker 17",
        xmp=XMP,
        icc_profile=_icc(),
    )
    return buffer.getvalue()


def _png() -> bytes:
    info = PngInfo()
    info.add_text("Location", "Haishu District, Ningbo")
    info.add_text("Comment", "compressed note", zip=True)
    info.add_itxt("Author", "网格员 张三", lang="zh", tkey="作者")
    buffer = BytesIO()
    _two_tone((30, 10)).save(
        buffer, format="PNG", pnginfo=info, exif=_exif(gps=NINGBO_GPS), icc_profile=_icc()
    )
    return buffer.getvalue()


def _webp(gps: dict[int, object] | None = None) -> bytes:
    buffer = BytesIO()
    _two_tone((24, 12)).save(
        buffer,
        format="WEBP",
        quality=90,
        exif=_exif(orientation=8, gps=RIO_GPS if gps is None else gps),
        xmp=XMP,
    )
    return buffer.getvalue()


def _noise_jpeg() -> bytes:
    buffer = BytesIO()
    Image.effect_noise((256, 256), 80).convert("RGB").save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def _png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG whose IHDR claims the given dimensions and carries no real pixel data."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def _assert_no_metadata(path: Path) -> None:
    raw = path.read_bytes()
    with Image.open(path) as image:
        exif = image.getexif()
        assert exif.get_ifd(ExifTags.IFD.GPSInfo) == {}
        assert dict(exif) == {}
        for key in ("exif", "xmp", "XML:com.adobe.xmp", "comment", "icc_profile"):
            assert key not in image.info, key
        if image.format == "PNG":
            assert getattr(image, "text", {}) == {}
    for marker in (b"Exif", b"EXIF", DEVICE.encode(), b"xmpmeta", b"grid worker", b"Haishu"):
        assert marker not in raw, marker
    for png_chunk in (b"tEXt", b"zTXt", b"iTXt", b"eXIf", b"iCCP"):
        assert png_chunk not in raw, png_chunk


@pytest.fixture
def store(tmp_path: Path) -> PhotoStore:
    return PhotoStore(tmp_path / "photos")


# -- storing -----------------------------------------------------------------------------------


def test_jpeg_original_is_stored_byte_for_byte_under_its_hash(store: PhotoStore) -> None:
    data = _jpeg()
    photo = store.put(data, filename="pothole.jpg")

    original = store.path(photo.sha256, "original")
    assert original.read_bytes() == data
    assert original == (
        store.root / "original" / photo.sha256[:2] / photo.sha256[2:4] / f"{photo.sha256}.jpg"
    )
    assert (photo.media_type, photo.ext, photo.size) == ("image/jpeg", "jpg", len(data))
    # The original keeps the evidence staff rely on.
    with Image.open(original) as image:
        assert image.getexif().get_ifd(ExifTags.IFD.GPSInfo)[ExifTags.GPS.GPSLatitudeRef] == "N"


def test_jpeg_public_copy_and_thumbnail_carry_no_metadata(store: PhotoStore) -> None:
    photo = store.put(_jpeg(), filename="pothole.jpg")

    public = store.path(photo.sha256, "public")
    thumb = store.path(photo.sha256, "thumb")
    assert public.suffix == ".jpg"
    assert thumb.name == f"{photo.sha256}.jpg"
    _assert_no_metadata(public)
    _assert_no_metadata(thumb)


def test_orientation_6_is_applied_to_pixels_and_reported_size(store: PhotoStore) -> None:
    photo = store.put(_jpeg((40, 20), orientation=6))

    assert (photo.width, photo.height) == (20, 40)
    with Image.open(store.path(photo.sha256, "public")) as public:
        assert public.size == (20, 40)
        # Stored left half (red) is the top once the camera's rotation is undone.
        top, bottom = public.convert("RGB").getpixel((10, 5)), public.getpixel((10, 35))
    assert isinstance(top, tuple) and top[0] > 150 and top[2] < 100
    assert isinstance(bottom, tuple) and bottom[2] > 150 and bottom[0] < 100


def test_orientation_8_on_webp_is_applied(store: PhotoStore) -> None:
    photo = store.put(_webp())

    assert (photo.width, photo.height) == (12, 24)
    with Image.open(store.path(photo.sha256, "public")) as public:
        assert public.format == "WEBP"
        assert public.size == (12, 24)
        # Orientation 8 rotates the other way: the red left half ends up at the bottom.
        bottom = public.convert("RGB").getpixel((6, 20))
    assert isinstance(bottom, tuple) and bottom[0] > 150 and bottom[2] < 100


def test_gps_north_east_is_converted_to_decimal_degrees(store: PhotoStore) -> None:
    photo = store.put(_jpeg())

    assert photo.taken_lat == pytest.approx(29.8683, abs=1e-6)
    assert photo.taken_lon == pytest.approx(121.5440, abs=1e-6)
    assert photo.taken_at == TAKEN_AT


def test_gps_south_west_is_negative(store: PhotoStore) -> None:
    photo = store.put(_webp())

    assert photo.taken_lat == pytest.approx(-(22 + 54 / 60 + 30 / 3600), abs=1e-6)
    assert photo.taken_lon == pytest.approx(-(43 + 11 / 60 + 47 / 3600), abs=1e-6)
    assert photo.taken_lat == pytest.approx(-22.908333, abs=1e-6)
    assert photo.taken_lon == pytest.approx(-43.196389, abs=1e-6)


def test_gps_without_hemisphere_is_not_guessed(store: PhotoStore) -> None:
    photo = store.put(_jpeg(gps={2: (29.0, 52.0, 5.88), 4: (121.0, 32.0, 38.4)}))

    assert (photo.taken_lat, photo.taken_lon) == (None, None)
    assert photo.taken_at == TAKEN_AT


def test_photo_without_exif_has_no_position_or_time(store: PhotoStore) -> None:
    buffer = BytesIO()
    _two_tone((16, 8)).save(buffer, format="JPEG")
    photo = store.put(buffer.getvalue())

    assert (photo.taken_lat, photo.taken_lon, photo.taken_at) == (None, None, None)
    assert (photo.width, photo.height) == (16, 8)


def test_png_text_chunks_and_exif_are_dropped_from_public_copy(store: PhotoStore) -> None:
    data = _png()
    photo = store.put(data, filename="notice.png")

    assert store.path(photo.sha256, "original").read_bytes() == data
    assert (photo.media_type, photo.ext) == ("image/png", "png")
    assert photo.taken_lat == pytest.approx(29.8683, abs=1e-6)
    public = store.path(photo.sha256, "public")
    assert public.suffix == ".png"
    _assert_no_metadata(public)
    _assert_no_metadata(store.path(photo.sha256, "thumb"))
    with Image.open(public) as image:
        assert image.size == (30, 10)
        assert set(image.info) <= {"dpi", "gamma", "srgb"}


def test_webp_public_copy_and_thumbnail_carry_no_metadata(store: PhotoStore) -> None:
    photo = store.put(_webp(), filename="wall.webp")

    assert (photo.media_type, photo.ext) == ("image/webp", "webp")
    _assert_no_metadata(store.path(photo.sha256, "public"))
    _assert_no_metadata(store.path(photo.sha256, "thumb"))


def test_palette_png_keeps_its_transparency(store: PhotoStore) -> None:
    image = Image.new("P", (8, 8), 1)
    image.putpalette([0, 0, 0, 255, 0, 0])
    buffer = BytesIO()
    image.save(buffer, format="PNG", transparency=1)
    photo = store.put(buffer.getvalue())

    with Image.open(store.path(photo.sha256, "public")) as public:
        assert public.convert("RGBA").getpixel((0, 0)) == (255, 0, 0, 0)
    with Image.open(store.path(photo.sha256, "thumb")) as thumb:
        assert thumb.mode == "RGB"
        assert thumb.getpixel((0, 0)) == pytest.approx((255, 255, 255), abs=3)


def test_thumbnail_fits_in_thumb_px_and_keeps_aspect(tmp_path: Path) -> None:
    store = PhotoStore(tmp_path, thumb_px=100)
    photo = store.put(_jpeg((800, 600), orientation=6))

    with Image.open(store.path(photo.sha256, "thumb")) as thumb:
        assert thumb.format == "JPEG"
        assert max(thumb.size) <= 100
        assert thumb.size == (75, 100)


def test_small_photo_is_not_enlarged_for_the_thumbnail(store: PhotoStore) -> None:
    photo = store.put(_jpeg((40, 20), orientation=None))

    with Image.open(store.path(photo.sha256, "thumb")) as thumb:
        assert thumb.size == (40, 20)


def test_filename_extension_is_ignored(store: PhotoStore) -> None:
    photo = store.put(_png(), filename="looks-like.jpg")

    assert (photo.ext, photo.media_type) == ("png", "image/png")
    assert store.path(photo.sha256, "original").suffix == ".png"


def test_same_bytes_twice_returns_same_photo_and_does_not_rewrite(store: PhotoStore) -> None:
    data = _jpeg()
    first = store.put(data, filename="a.jpg")
    variants: tuple[Variant, ...] = ("original", "public", "thumb")
    files = [store.path(first.sha256, variant) for variant in variants]
    before = [(f.stat().st_ino, f.stat().st_mtime_ns) for f in files]

    second = store.put(data, filename="renamed.jpg")

    assert second == first
    assert [(f.stat().st_ino, f.stat().st_mtime_ns) for f in files] == before


def test_missing_derived_file_is_rebuilt_on_second_put(store: PhotoStore) -> None:
    data = _jpeg()
    photo = store.put(data)
    thumb = store.path(photo.sha256, "thumb")
    thumb.unlink()

    assert store.put(data) == photo
    assert store.path(photo.sha256, "thumb").is_file()


def test_no_temporary_files_are_left_behind(store: PhotoStore) -> None:
    store.put(_jpeg())
    store.put(_png())

    leftovers = [p for p in store.root.rglob("*") if p.is_file() and p.name.startswith(".")]
    assert leftovers == []
    assert len([p for p in store.root.rglob("*") if p.is_file()]) == 6


def test_describe_rebuilds_the_stored_photo_from_disk(store: PhotoStore) -> None:
    for data in (_jpeg(), _png(), _webp()):
        photo = store.put(data)
        assert store.describe(photo.sha256) == photo
        assert isinstance(photo, StoredPhoto)


def test_describe_of_unknown_hash_is_not_found(store: PhotoStore) -> None:
    with pytest.raises(NotFound):
        store.describe("0" * 64)


# -- rejections --------------------------------------------------------------------------------


def _rejected(store: PhotoStore, data: bytes, filename: str) -> Rejected:
    with pytest.raises(Rejected) as caught:
        store.put(data, filename=filename)
    assert filename in caught.value.msg
    assert not store.root.exists() or not any(p.is_file() for p in store.root.rglob("*"))
    return caught.value


def test_too_large_is_rejected_with_the_limit_in_mib(tmp_path: Path) -> None:
    store = PhotoStore(tmp_path, max_bytes=1024 * 1024)
    error = _rejected(store, _jpeg() + b"\x00" * (1024 * 1024), "big.jpg")

    assert error.code == "photo_too_large"
    assert "1 MiB" in error.msg


def test_empty_upload_is_rejected(store: PhotoStore) -> None:
    error = _rejected(store, b"", "empty.jpg")

    assert error.code == "photo_empty"


def test_text_file_renamed_to_jpg_is_rejected(store: PhotoStore) -> None:
    error = _rejected(store, "这不是照片\n".encode() * 20, "report.jpg")

    assert error.code == "photo_type"
    assert "JPEG" in error.msg and "WebP" in error.msg


def test_gif_is_rejected(store: PhotoStore) -> None:
    buffer = BytesIO()
    _two_tone((10, 10)).save(buffer, format="GIF")
    error = _rejected(store, buffer.getvalue(), "anim.gif")

    assert error.code == "photo_type"


def test_truncated_jpeg_is_rejected(store: PhotoStore) -> None:
    data = _noise_jpeg()
    error = _rejected(store, data[: len(data) // 2], "cut.jpg")

    assert error.code == "photo_broken"


def test_truncated_png_is_rejected(store: PhotoStore) -> None:
    data = _png()
    error = _rejected(store, data[: len(data) - 30], "cut.png")

    assert error.code == "photo_broken"


def test_jpeg_magic_followed_by_garbage_is_rejected(store: PhotoStore) -> None:
    error = _rejected(store, b"\xff\xd8\xff" + b"\x00garbage" * 50, "fake.jpg")

    assert error.code == "photo_broken"


def test_decompression_bomb_is_rejected_before_decoding(store: PhotoStore) -> None:
    bomb = _png_header_only(100_000, 100_000)
    assert len(bomb) < 200
    error = _rejected(store, bomb, "bomb.png")

    assert error.code == "photo_too_many_pixels"


def test_pixel_limit_is_configurable(tmp_path: Path) -> None:
    store = PhotoStore(tmp_path, max_pixels=400)
    error = _rejected(store, _jpeg((40, 20), orientation=None), "wide.jpg")

    assert error.code == "photo_too_many_pixels"
    assert "40×20" in error.msg


def test_bomb_just_over_the_default_limit_is_rejected(store: PhotoStore) -> None:
    error = _rejected(store, _png_header_only(8000, 5001), "huge.png")

    assert error.code == "photo_too_many_pixels"
    assert "8000×5001" in error.msg


# -- paths -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        "../etc/passwd",
        "../../" + "a" * 58,
        "A" * 64,
        "abc123",
        "g" * 64,
        "a" * 64 + "\n",
        "a" * 65,
        "",
    ],
)
def test_path_refuses_malformed_hashes(store: PhotoStore, bad: str) -> None:
    with pytest.raises(NotFound):
        store.path(bad, "original")
    with pytest.raises(NotFound):
        store.exists(bad)
    with pytest.raises(NotFound):
        store.describe(bad)


def test_path_of_uppercase_hash_of_a_stored_photo_is_refused(store: PhotoStore) -> None:
    photo = store.put(_jpeg())

    with pytest.raises(NotFound):
        store.path(photo.sha256.upper(), "public")


def test_exists_and_path_for_stored_and_unknown_photos(store: PhotoStore) -> None:
    photo = store.put(_webp())
    unknown = "f" * 64

    assert store.exists(photo.sha256) is True
    assert store.exists(unknown) is False
    assert store.path(photo.sha256, "public").suffix == ".webp"
    variants: tuple[Variant, ...] = ("original", "public", "thumb")
    for variant in variants:
        with pytest.raises(NotFound):
            store.path(unknown, variant)
