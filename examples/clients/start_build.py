"""A build started from Python with the Temporal SDK alone (docs/client.md).

Usage: python start_build.py INPUT.json   (INPUT.json from `causeway compile`)
Env: TEMPORAL_ADDRESS (default localhost:7233), CAUSEWAY_TASK_QUEUE (default causeway).
"""
import asyncio
import json
import os
import sys
import uuid

from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError


async def main() -> int:
    with open(sys.argv[1]) as f:
        build_input = json.load(f)
    client = await Client.connect(os.environ.get("TEMPORAL_ADDRESS", "localhost:7233"))
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
