"""Knowledge import/export files for the browser: a zip of YAML files, or one YAML file."""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass

from knowledge.loader import Bundle, export_files, read_files
from knowledge.validation import ValidationError

MAX_UPLOAD_BYTES = 2 * 1024 * 1024
_MAX_MEMBERS = 50
_MAX_UNPACKED_BYTES = 8 * 1024 * 1024  # a zip bomb stops here


@dataclass(frozen=True, slots=True)
class _MemoryFile:
    """What :func:`knowledge.loader.read_files` needs of a file: its text."""

    data: bytes

    def read_text(self, encoding: str = "utf-8") -> str:
        return self.data.decode(encoding)


def export_zip(bundle: Bundle) -> bytes:
    """The bundle as a zip of ``resources.yaml``, ``faq.yaml`` and ``templates.yaml``."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in export_files(bundle).items():
            info = zipfile.ZipInfo(name, date_time=(2000, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, text.encode("utf-8"))
    return buf.getvalue()


def read_upload(filename: str, data: bytes) -> Bundle:
    """Read an uploaded zip of YAML files or a single YAML file.

    Raises:
        ValidationError: unreadable files or invalid knowledge (Japanese messages).
    """
    if not data:
        raise ValidationError([("file", "ファイルを選んでください。")])
    if len(data) > MAX_UPLOAD_BYTES:
        raise ValidationError([("file", "ファイルが大きすぎます（2MBまで）。")])
    if data[:4] == b"PK\x03\x04":
        return read_files(_zip_members(data))
    if not filename.lower().endswith((".yaml", ".yml")):
        raise ValidationError([("file", "zipファイルか、YAMLファイル（.yaml）を選んでください。")])
    return read_files([(filename or "upload.yaml", _MemoryFile(data))])


def _zip_members(data: bytes) -> list[tuple[str, _MemoryFile]]:
    try:
        z = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise ValidationError([("file", "zipファイルとして読めません。")]) from exc
    members: list[tuple[str, _MemoryFile]] = []
    total = 0
    with z:
        infos = [
            i for i in z.infolist() if not i.is_dir() and i.filename.endswith((".yaml", ".yml"))
        ]
        if len(infos) > _MAX_MEMBERS:
            raise ValidationError([("file", "zipの中のファイルが多すぎます（50個まで）。")])
        for info in sorted(infos, key=lambda i: i.filename):
            total += info.file_size
            if total > _MAX_UNPACKED_BYTES:
                raise ValidationError([("file", "zipの中身が大きすぎます（8MBまで）。")])
            try:
                content = z.read(info)
            except (zipfile.BadZipFile, RuntimeError, OSError) as exc:
                raise ValidationError([("file", f"{info.filename} を取り出せません。")]) from exc
            members.append((info.filename, _MemoryFile(content)))
    if not members:
        raise ValidationError([("file", "zipの中にYAMLファイル（.yaml）がありません。")])
    return members
