"""PDFs rewritten without the document information, XMP, private application data, the
document ID or metadata in embedded JPEGs."""

from __future__ import annotations

import io

import pikepdf

from portal.intake.sanitize.images import strip_jpeg_metadata
from portal.intake.sanitize.kinds import UploadRejected

_PDF_PRIVATE_KEYS = ("/PieceInfo", "/LastModified")


def clean_pdf(data: bytes) -> tuple[bytes, tuple[str, ...]]:
    """Remove the Info dictionary, XMP streams, application private data, the document
    ID (which lets an employer match this file with the reporter's copy) and EXIF/XMP
    inside embedded JPEG images."""
    removed: set[str] = set()
    buffer = io.BytesIO()
    try:
        with pikepdf.open(io.BytesIO(data)) as pdf:
            info = pdf.trailer.get("/Info")
            if isinstance(info, pikepdf.Dictionary):
                if any(k in info for k in ("/Author", "/Creator", "/Producer")):
                    removed.add("document_author")
                if len(info):
                    removed.add("document_info")
            if "/Info" in pdf.trailer:
                del pdf.trailer["/Info"]
            if "/ID" in pdf.trailer:
                del pdf.trailer["/ID"]
                removed.add("document_id")
            for obj in pdf.objects:
                if not isinstance(obj, (pikepdf.Dictionary, pikepdf.Stream)):
                    continue
                if "/Metadata" in obj:
                    del obj["/Metadata"]
                    removed.add("xmp")
                for key in _PDF_PRIVATE_KEYS:
                    if key in obj:
                        del obj[key]
                        removed.add("application_data")
                if isinstance(obj, pikepdf.Stream) and _is_plain_jpeg(obj):
                    raw = obj.read_raw_bytes()
                    stripped = strip_jpeg_metadata(raw, keep_orientation=False)
                    if stripped is not None and stripped != raw:
                        parms = obj.get("/DecodeParms")  # /ColorTransform: keep it
                        if not isinstance(parms, pikepdf.Dictionary | pikepdf.Array):
                            parms = None
                        obj.write(stripped, filter=pikepdf.Name.DCTDecode, decode_parms=parms)
                        removed.add("embedded_image_metadata")
            pdf.save(buffer, fix_metadata_version=False)
    except pikepdf.PasswordError:
        raise UploadRejected("corrupt", "encrypted PDF (password required)") from None
    except (pikepdf.PdfError, ValueError) as exc:
        raise UploadRejected("corrupt", f"PDF could not be processed: {exc}") from None
    return buffer.getvalue(), tuple(sorted(removed))


def _is_plain_jpeg(obj: pikepdf.Object) -> bool:
    if obj.get("/Subtype") != pikepdf.Name.Image:
        return False
    filt = obj.get("/Filter")
    if isinstance(filt, pikepdf.Array):
        return len(filt) == 1 and filt[0] == pikepdf.Name.DCTDecode
    return filt == pikepdf.Name.DCTDecode
