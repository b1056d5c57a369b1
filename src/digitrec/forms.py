"""The images in a multipart/form-data request body, read from memory with starlette's parser.

Two things starlette's parser does not do for us. A file whose name is given only in the RFC 5987
form (`filename*=UTF-8''%E2%82%AC.png`, which some HTTP libraries send for non-ASCII names) is a
file, named by that name: starlette's parser ignores the parameter (RFC 7578 forbids it), so such
an upload was read as a text field and the request as having no image. And the part counts are
checked here, so that too many files or fields is a 413 that says which limit was hit rather
than starlette's 400.
"""

from __future__ import annotations

from email.message import Message
from email.utils import collapse_rfc2231_value

from .errors import require
from .limits import Refused

require("fastapi", "serve")
require("python_multipart", "serve")
from python_multipart.multipart import parse_options_header  # noqa: E402
from starlette.datastructures import Headers  # noqa: E402
from starlette.formparsers import MultiPartException, MultiPartParser  # noqa: E402


def extended_filename(disposition: bytes) -> str | None:
    """The RFC 5987 `filename*` of a Content-Disposition header, decoded; None if it has none."""
    header = Message()
    header["content-disposition"] = disposition.decode("latin-1")
    for key, value in header.get_params([], header="content-disposition")[1:]:
        if key.lower() == "filename" and isinstance(value, tuple):  # (charset, language, text): filename*
            return collapse_rfc2231_value(value)
    return None


class _Parser(MultiPartParser):
    """starlette's parser with `filename*` names and the limits enforced as 413s."""

    def __init__(self, headers: Headers, stream, max_files: int):
        super().__init__(headers, stream)  # starlette's own limits (1000) are above ours
        self.limit = max_files
        self.files = self.fields = 0

    def on_headers_finished(self) -> None:
        part = self._current_part
        extended = extended_filename(part.content_disposition) if b"filename*" in part.content_disposition else None
        if extended is not None:
            part.content_disposition += b'; filename=""'  # makes starlette take the part as a file
        is_file = b"filename" in parse_options_header(part.content_disposition)[1]
        self.files += is_file
        self.fields += not is_file
        if self.files > self.limit:
            raise Refused(413, f"more than the {self.limit} images allowed in one request")
        if self.fields > self.limit:
            raise Refused(413, f"more than the {self.limit} form fields without a file allowed in one request: "
                               "send images as files, and little else")
        super().on_headers_finished()
        if extended is not None:
            part.file.filename = extended


async def form_files(headers: Headers, body: bytes, max_files: int) -> list[tuple[str, bytes]]:
    """(name, bytes) of each file in the multipart `body` (any field names), named by the file name
    sent (else the field's name). Refuses a malformed body (400) and too many parts (413)."""
    async def stream():
        yield body

    try:
        form = await _Parser(headers, stream(), max_files).parse()
    except MultiPartException as e:
        raise Refused(400, f"malformed multipart body ({' '.join(e.message.split())[:120]})") from None
    return [(v.filename or k, await v.read()) for k, v in form.multi_items() if hasattr(v, "read")]
