"""The Python client of DraftStore: two-stage uploads through presigned URLs, straight to object storage.

    from draftstore import Client

    with Client("http://localhost:8080", token="my-api-key") as client:
        client.upload_file("receipt.pdf", "tmp/3f9c.pdf", progress=True)
        client.confirm_upload("tmp/3f9c.pdf", final_name="orders/42/receipt.pdf", metadata={"owner-id": "42"})
        for page in client.list_objects(prefix="orders/42/")["objects"]: ...

`AsyncClient` has the same methods as coroutines. Failures raise `DraftStoreError` with DraftStore's `error_type`.
"""

from ._client import AsyncClient
from ._errors import DraftStoreError
from ._models import *  # noqa: F401,F403
from ._sync import Client

__all__ = ["AsyncClient", "Client", "DraftStoreError"]
__version__ = "0.1.0"
