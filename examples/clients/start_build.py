"""A build started from Python with the Temporal SDK alone (docs/client.md).

Usage: python start_build.py INPUT.json   (INPUT.json from `causeway compile`)
Env: TEMPORAL_ADDRESS (default localhost:7233), CAUSEWAY_TASK_QUEUE (default causeway),
CAUSEWAY_CODEC_ENDPOINT and CAUSEWAY_CODEC_TOKEN: the codec server that en/decrypts payloads
(docs/security.md).
"""
import asyncio
import base64
import dataclasses
import json
import os
import sys
import urllib.request
import uuid

import temporalio.converter
from temporalio.api.common.v1 import Payload
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError


class RemoteCodec(temporalio.converter.PayloadCodec):
    """Temporal's remote codec protocol: POST {payloads: [...]} (fields in base64) to /encode or /decode."""

    def __init__(self, endpoint: str, token: str) -> None:
        self.endpoint, self.token = endpoint, token

    def _call(self, action: str, payloads):
        body = {"payloads": [{"metadata": {k: base64.b64encode(v).decode() for k, v in p.metadata.items()}, "data": base64.b64encode(p.data).decode()} for p in payloads]}
        req = urllib.request.Request(f"{self.endpoint}/{action}", data=json.dumps(body).encode(), headers={"content-type": "application/json", "authorization": f"Bearer {self.token}"})
        with urllib.request.urlopen(req) as res:
            out = json.load(res)
        return [Payload(metadata={k: base64.b64decode(v) for k, v in p["metadata"].items()}, data=base64.b64decode(p["data"])) for p in out["payloads"]]

    async def encode(self, payloads):
        return await asyncio.to_thread(self._call, "encode", payloads)

    async def decode(self, payloads):
        return await asyncio.to_thread(self._call, "decode", payloads)


async def main() -> int:
    with open(sys.argv[1]) as f:
        build_input = json.load(f)
    converter = temporalio.converter.default()
    if os.environ.get("CAUSEWAY_CODEC_ENDPOINT"):
        converter = dataclasses.replace(converter, payload_codec=RemoteCodec(os.environ["CAUSEWAY_CODEC_ENDPOINT"], os.environ.get("CAUSEWAY_CODEC_TOKEN", "")))
    client = await Client.connect(os.environ.get("TEMPORAL_ADDRESS", "localhost:7233"), data_converter=converter)
    handle = await client.start_workflow(
        "build",
        build_input,
        id=f"build-{uuid.uuid4()}",
        task_queue=os.environ.get("CAUSEWAY_TASK_QUEUE", "causeway"),
    )
    print(f"started {handle.id}")
    try:
        summary = await handle.result()
        print(f"succeeded: {summary['status']}")
        return 0
    except WorkflowFailureError as err:
        # A failed build fails with type BuildFailed, an errored one with BuildErrored.
        cause = err.cause
        if not isinstance(cause, ApplicationError):
            raise
        print(f"{cause.type}: {cause.message}")
        return 1 if cause.type == "BuildFailed" else 2


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
