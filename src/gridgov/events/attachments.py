"""Content-addressed photo store for event reports: originals kept as evidence, stripped copies shown."""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import re
import struct
import tempfile
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any, Final, Literal

from PIL import ExifTags, Image, ImageCms

from gridgov.core.errors import NotFound, Rejected

Variant = Literal["original", "public", "thumb"]

MIB: Final = 1024 * 1024
DEFAULT_MAX_PIXELS: Final = 40_000_000
PUBLIC_QUALITY: Final = 88
THUMB_QUALITY: Final = 80
ACCEPTED: Final = "只接受 JPEG、PNG、WebP 格式的照片"

_SHA256 = re.compile(r"[0-9a-f]{64}")
_EXTS: Final = ("jpg", "png", "webp")
# Pillow format name -> (file extension, media type)
_FORMATS: Final[dict[str, tuple[str, str]]] = {
    "JPEG": ("jpg", "image/jpeg"),
    "PNG": ("png", "image/png"),
    "WEBP": ("webp", "image/webp"),
}
_FORMAT_BY_EXT: Final = {ext: fmt for fmt, (ext, _) in _FORMATS.items()}
# Same table as ImageOps.exif_transpose; kept here so the reported width/height and the
# pixels of the public copy come from one reading of the Orientation tag.
_TRANSPOSE: Final[dict[int, Image.Transpose]] = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# Modes each encoder takes as they are; anything else is converted to RGB or RGBA first.
_KEEP_MODES: Final[dict[str, frozenset[str]]] = {
    "JPEG": frozenset({"L", "RGB"}),
    "PNG": frozenset({"1", "L", "LA", "RGB", "RGBA", "I", "I;16"}),
    "WEBP": frozenset({"RGB", "RGBA"}),
}
_VARIANT_LABEL: Final = {"original": "原图", "public": "公开图", "thumb": "缩略图"}
# Errors Pillow raises on corrupt, truncated or hostile input.
_DECODE_ERRORS: Final = (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError)
_EXIF_ERRORS: Final = (*_DECODE_ERRORS, KeyError, TypeError)


@dataclass(frozen=True, slots=True)
class StoredPhoto:
    sha256: str
    media_type: str
    ext: str
    width: int
    height: int
    size: int
    taken_lat: float | None
    taken_lon: float | None
    taken_at: str | None


class PhotoStore:
    """Photos under ``root/{original,public,thumb}/ab/cd/<sha256>.<ext>``.

    ``original`` holds the uploaded bytes unchanged (staff evidence, may carry GPS);
    ``public`` and ``thumb`` are re-encoded without any metadata, orientation applied.
    """

    def __init__(
        self,
        root: Path,
        *,
        max_bytes: int = 10 * MIB,
        thumb_px: int = 320,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> None:
        if max_bytes <= 0 or thumb_px <= 0 or max_pixels <= 0:
            raise ValueError("max_bytes, thumb_px and max_pixels must be positive")
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.thumb_px = thumb_px
        self.max_pixels = max_pixels

    # -- writing -----------------------------------------------------------------------------

    def put(self, data: bytes, *, filename: str = "") -> StoredPhoto:
        """Check, store and derive the public copy and thumbnail; same bytes twice is a no-op."""
        name = _display_name(filename)
        if not data:
            raise Rejected(f"照片「{name}」是空文件；{ACCEPTED}。", code="photo_empty")
        if len(data) > self.max_bytes:
            raise Rejected(
                f"照片「{name}」大小为 {len(data) / MIB:.1f} MiB，超过 {self.max_bytes / MIB:g} MiB "
                f"的上限；请压缩后重新上传，{ACCEPTED}。",
                code="photo_too_large",
            )
        fmt = _sniff(data)
        if fmt is None:
            raise Rejected(
                f"文件「{name}」不是 JPEG、PNG 或 WebP 图片（按文件内容识别，与扩展名无关）；{ACCEPTED}。",
                code="photo_type",
            )
        sha = hashlib.sha256(data).hexdigest()
        ext = _FORMATS[fmt][0]
        original = self._file(sha, "original", ext)
        public = self._file(sha, "public", ext)
        thumb = self._file(sha, "thumb", "jpg")
        if original.is_file() and public.is_file() and thumb.is_file():
            return self._inspect(data, fmt, sha, name)

        image = self._decode(data, fmt, name)
        photo = self._inspect(data, fmt, sha, name)
        upright = _upright(_to_srgb(image), _orientation(image))
        _write_atomic(public, _encode_public(upright, fmt))
        _write_atomic(thumb, self._encode_thumb(upright))
        # The original goes last: once it exists, both derived files exist too.
        _write_atomic(original, data)
        return photo

    # -- reading -----------------------------------------------------------------------------

    def path(self, sha256: str, variant: Variant) -> Path:
        """The stored file of one variant; NotFound for a malformed hash or a missing file."""
        _check_sha(sha256)
        if variant == "thumb":
            candidate = self._file(sha256, "thumb", "jpg")
            if candidate.is_file():
                return candidate
        elif variant in ("original", "public"):
            for ext in _EXTS:
                candidate = self._file(sha256, variant, ext)
                if candidate.is_file():
                    return candidate
        raise NotFound(f"照片 {sha256} 的{_VARIANT_LABEL.get(variant, variant)}不存在。")

    def exists(self, sha256: str) -> bool:
        """Whether the photo is stored; NotFound for a malformed hash."""
        _check_sha(sha256)
        return any(self._file(sha256, "original", ext).is_file() for ext in _EXTS)

    def describe(self, sha256: str) -> StoredPhoto:
        """Rebuild the StoredPhoto of a stored photo from its original bytes."""
        original = self.path(sha256, "original")
        data = original.read_bytes()
        fmt = _FORMAT_BY_EXT[original.suffix.removeprefix(".")]
        return self._inspect(data, fmt, sha256, original.name)

    # -- internals ---------------------------------------------------------------------------

    def _file(self, sha: str, variant: str, ext: str) -> Path:
        return self.root / variant / sha[:2] / sha[2:4] / f"{sha}.{ext}"

    def _open(self, data: bytes, fmt: str, name: str) -> Image.Image:
        """Open the header only, refusing oversized dimensions before any pixel is decoded."""
        try:
            image = Image.open(BytesIO(data), formats=[fmt])
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise self._too_many_pixels(name, None) from exc
        except _DECODE_ERRORS as exc:
            raise _broken(name) from exc
        # Phones with depth or HDR data write multi-picture JPEGs, which Pillow calls MPO.
        if image.format != fmt and not (fmt == "JPEG" and image.format == "MPO"):
            raise _broken(name)
        width, height = image.size
        if width <= 0 or height <= 0:
            raise _broken(name)
        if width * height > self.max_pixels:
            raise self._too_many_pixels(name, (width, height))
        return image

    def _decode(self, data: bytes, fmt: str, name: str) -> Image.Image:
        """Verify the structure, then decode every pixel of the first frame."""
        try:
            self._open(data, fmt, name).verify()
            image = self._open(data, fmt, name)
            image.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise self._too_many_pixels(name, None) from exc
        except _DECODE_ERRORS as exc:
            raise _broken(name) from exc
        return image

    def _inspect(self, data: bytes, fmt: str, sha: str, name: str) -> StoredPhoto:
        image = self._open(data, fmt, name)
        exif = _read_exif(image)
        width, height = image.size
        if _orientation(image) in (5, 6, 7, 8):
            width, height = height, width
        lat, lon = _gps(exif)
        ext, media_type = _FORMATS[fmt]
        return StoredPhoto(
            sha256=sha,
            media_type=media_type,
            ext=ext,
            width=width,
            height=height,
            size=len(data),
            taken_lat=lat,
            taken_lon=lon,
            taken_at=_taken_at(exif),
        )

    def _encode_thumb(self, upright: Image.Image) -> bytes:
        thumb = _flatten_rgb(upright)
        thumb.thumbnail((self.thumb_px, self.thumb_px), Image.Resampling.LANCZOS)
        buffer = BytesIO()
        _bare(thumb).save(buffer, format="JPEG", quality=THUMB_QUALITY)
        return buffer.getvalue()

    def _too_many_pixels(self, name: str, size: tuple[int, int] | None) -> Rejected:
        limit = f"{self.max_pixels / 1_000_000:g}"
        found = f"尺寸为 {size[0]}×{size[1]}，" if size else ""
        return Rejected(
            f"照片「{name}」{found}超过 {limit} 百万像素的上限；请缩小后重新上传，{ACCEPTED}。",
            code="photo_too_many_pixels",
        )


def _check_sha(sha256: str) -> None:
    # fullmatch, not match: "$" would let a trailing newline through.
    if not isinstance(sha256, str) or _SHA256.fullmatch(sha256) is None:
        raise NotFound("照片编号无效：应为 64 位小写十六进制 SHA-256。")


def _display_name(filename: str) -> str:
    base = re.split(r"[\\/]", filename)[-1]
    base = "".join(ch for ch in base if ch.isprintable()).strip()
    return base[:80] or "（未命名）"


def _broken(name: str) -> Rejected:
    return Rejected(
        f"照片「{name}」已损坏或不完整，无法读取；请重新上传完整的照片，{ACCEPTED}。",
        code="photo_broken",
    )


def _sniff(data: bytes) -> str | None:
    """The format by magic bytes; extension and declared content type are never trusted."""
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def _write_atomic(target: Path, payload: bytes) -> None:
    """Temp file in the target's directory, fsync, os.replace; an existing file is kept."""
    if target.is_file():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


# -- metadata ----------------------------------------------------------------------------------


def _read_exif(image: Image.Image) -> Image.Exif | None:
    # Broken EXIF from a phone must not block the report: the metadata is optional.
    try:
        return image.getexif()
    except _EXIF_ERRORS:
        return None


def _orientation(image: Image.Image) -> int:
    exif = _read_exif(image)
    value = exif.get(ExifTags.Base.Orientation, 1) if exif is not None else 1
    return value if isinstance(value, int) and value in _TRANSPOSE else 1


def _sub_ifd(exif: Image.Exif, ifd: ExifTags.IFD) -> dict[int, Any]:
    try:
        return exif.get_ifd(ifd)
    except _EXIF_ERRORS:
        return {}


def _gps(exif: Image.Exif | None) -> tuple[float | None, float | None]:
    if exif is None:
        return None, None
    gps = _sub_ifd(exif, ExifTags.IFD.GPSInfo)
    lat = _degrees(
        gps.get(ExifTags.GPS.GPSLatitude), gps.get(ExifTags.GPS.GPSLatitudeRef), "N", "S", 90.0
    )
    lon = _degrees(
        gps.get(ExifTags.GPS.GPSLongitude), gps.get(ExifTags.GPS.GPSLongitudeRef), "E", "W", 180.0
    )
    if lat is None or lon is None:
        return None, None
    return lat, lon


def _degrees(
    value: object, ref: object, positive: str, negative: str, limit: float
) -> float | None:
    """EXIF (degrees, minutes, seconds) and a hemisphere letter to signed decimal degrees.

    Without a valid hemisphere the sign is unknown, so no position is better than a wrong one.
    """
    if isinstance(ref, bytes):
        ref = ref.decode("ascii", "ignore")
    if not isinstance(ref, str):
        return None
    ref = ref.strip("\x00 ").upper()
    if ref not in (positive, negative):
        return None
    if not isinstance(value, tuple | list) or not 1 <= len(value) <= 3:
        return None
    try:
        parts = [float(part) for part in value]
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    if any(not math.isfinite(part) or part < 0 for part in parts):
        return None
    degrees = sum(part / unit for part, unit in zip(parts, (1.0, 60.0, 3600.0), strict=False))
    if degrees > limit:
        return None
    return round(-degrees if ref == negative else degrees, 7)


def _taken_at(exif: Image.Exif | None) -> str | None:
    if exif is None:
        return None
    value = _sub_ifd(exif, ExifTags.IFD.Exif).get(ExifTags.Base.DateTimeOriginal)
    if isinstance(value, bytes):
        value = value.decode("ascii", "ignore")
    if not isinstance(value, str):
        return None
    return value.strip("\x00 ") or None


# -- pixels ------------------------------------------------------------------------------------


def _to_srgb(image: Image.Image) -> Image.Image:
    """Bake an embedded ICC profile into sRGB pixels, so the profile (which can name the
    device maker) can be dropped without shifting colours."""
    icc = image.info.get("icc_profile")
    if not icc or image.mode not in ("RGB", "RGBA", "CMYK"):
        return image
    try:
        converted = ImageCms.profileToProfile(
            image,
            ImageCms.ImageCmsProfile(BytesIO(icc)),
            ImageCms.createProfile("sRGB"),
            outputMode="RGBA" if image.mode == "RGBA" else "RGB",
        )
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return image
    return converted if converted is not None else image


def _upright(image: Image.Image, orientation: int) -> Image.Image:
    method = _TRANSPOSE.get(orientation)
    return image.transpose(method) if method is not None else image


def _bare(image: Image.Image) -> Image.Image:
    """A new image holding only the pixels: no info dict, so no EXIF, XMP, ICC, comments or
    PNG text can reach an encoder."""
    if image.mode in ("P", "PA"):
        image = image.convert("RGBA" if image.has_transparency_data else "RGB")
    return Image.frombytes(image.mode, image.size, image.tobytes())


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA") or image.has_transparency_data


def _to_8bit(image: Image.Image) -> Image.Image:
    if image.mode in ("I", "I;16", "I;16B", "I;16L"):
        # Scale 16-bit grey down; a plain convert("L") would clip almost everything to white.
        return image.convert("I").point(lambda v: v * (1 / 256)).convert("L")
    return image


def _encode_public(upright: Image.Image, fmt: str) -> bytes:
    image = upright
    if image.mode not in _KEEP_MODES[fmt]:
        image = _to_8bit(image)
    if image.mode not in _KEEP_MODES[fmt]:
        image = image.convert("RGBA" if fmt != "JPEG" and _has_alpha(image) else "RGB")
    buffer = BytesIO()
    if fmt == "PNG":
        _bare(image).save(buffer, format="PNG")
    else:
        _bare(image).save(buffer, format=fmt, quality=PUBLIC_QUALITY)
    return buffer.getvalue()


def _flatten_rgb(image: Image.Image) -> Image.Image:
    """RGB for JPEG: transparent areas become white rather than black."""
    image = _to_8bit(image)
    if _has_alpha(image):
        rgba = image.convert("RGBA")
        white = Image.new("RGB", rgba.size, (255, 255, 255))
        white.paste(rgba, mask=rgba.getchannel("A"))
        return white
    return image.convert("RGB") if image.mode != "RGB" else image.copy()
