"""What runs while the app serves: the background jobs and the change-feed listener."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from starlette.applications import Starlette

from replay_catalog.jobs.liveness import keep_ending_silent_broadcasts
from replay_catalog.jobs.reconciliation import keep_reconciling
from replay_catalog.services import CatalogServices, file_list_client, services_of
from tencent.filelist import FileListClient


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    """Start the jobs the settings switch on, and stop them (and the database) at the end."""
    services = services_of(app)
    settings = services.settings
    client = file_list_client(settings) if settings.reconcile_interval_seconds else None
    background = _background_jobs(services, client)
    # Subscribers here hear every replica's changes from the start.
    services.database.changes.listen()
    try:
        yield
    finally:
        for task in background:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if client is not None:
            await client.aclose()
        await services.database.dispose()


def _background_jobs(
    services: CatalogServices, client: FileListClient | None
) -> list[asyncio.Task[None]]:
    """Reconciliation with Tencent's file list (given a client), and the live-silence sweep."""
    settings = services.settings
    background: list[asyncio.Task[None]] = []
    if client is not None:
        background.append(
            asyncio.create_task(
                keep_reconciling(
                    services.database,
                    services.ingestor,
                    client,
                    interval=timedelta(seconds=settings.reconcile_interval_seconds),
                    ended_within=timedelta(seconds=settings.reconcile_ended_within_seconds),
                )
            )
        )
    if settings.live_silence_seconds:
        background.append(
            asyncio.create_task(
                keep_ending_silent_broadcasts(
                    services.database,
                    services.ingestor.rules,
                    interval=timedelta(seconds=settings.live_sweep_interval_seconds),
                )
            )
        )
    return background
