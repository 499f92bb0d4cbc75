"""A file's size as people read it: bytes under 1 KB, KB (one decimal) under 1 MB, MB above.
B, KB and MB read the same in Chinese, Korean and English, so no catalog entry is needed."""

KIB = 1024
MIB = 1024 * 1024


def file_size_text(size: int | None) -> str:
    if size is None or size < 0:
        return "—"
    if size < KIB:
        return f"{size} B"
    if size < MIB:
        kb = round(size / KIB, 1)
        if kb < KIB:  # 1,048,575 bytes would round to "1024.0 KB"
            return f"{kb:.1f} KB"
    return f"{size / MIB:.1f} MB"
