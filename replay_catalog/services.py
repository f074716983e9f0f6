"""What the endpoints and background jobs of one app share, built once from its settings."""

from dataclasses import dataclass

from starlette.applications import Starlette

from replay_catalog.metrics import CatalogMetrics
from replay_catalog.replays import ReplayPlaylists
from replay_catalog.settings import Settings
from replay_catalog.vod import VodFetcher
from resolvers.ingestion import CommitPacing, Ingestor
from resolvers.refusals import PerClientLimit
from resolvers.shared_subscriptions import SharedSubscriptions, SubscriptionCaps
from schema import QueryLimits
from schema.documents import ParsedDocuments
from storage.database import Database
from tencent.filelist import FileListClient


@dataclass(frozen=True)
class CatalogServices:
    """One app's settings and the long-lived objects its routes and jobs work with."""

    settings: Settings
    database: Database
    metrics: CatalogMetrics
    ingestor: Ingestor
    # Refused callbacks per client, by POST /callbacks/tencent and ingestTencentEvent alike.
    refusals: PerClientLimit
    # Subscribers of one document share one execution (and one change-feed listener).
    subscriptions: SharedSubscriptions
    limits: QueryLimits
    # One parse per request, shared by the response cache and Strawberry.
    documents: ParsedDocuments
    replays: ReplayPlaylists


def database_for(settings: Settings) -> Database:
    """The database the settings describe: its pool, and its change feed's bounds."""
    return Database(
        settings.database_url,
        settings.database_pool_size,
        settings.database_max_overflow,
        subscriber_queue_size=settings.subscription_queue_size,
        max_subscribers=settings.subscriptions_max,
    )


def file_list_client(settings: Settings) -> FileListClient | None:
    """A Live_Tape_GetFilelist client, or None unless TENCENT_APPID and TENCENT_API_KEY are set."""
    if settings.tencent_appid is None or settings.tencent_api_key is None:
        return None
    return FileListClient(
        settings.tencent_appid,
        settings.tencent_api_key.get_secret_value(),
        settings.tencent_api_url,
        min_interval=settings.tencent_api_min_interval_seconds,
    )


def services_for(settings: Settings, database: Database) -> CatalogServices:
    """Everything one app needs, on `database`; its metrics hear the database's outages."""
    metrics = CatalogMetrics()
    subscriptions = SharedSubscriptions(
        SubscriptionCaps(
            per_process=settings.subscriptions_max,
            per_client=settings.subscriptions_per_client,
            queue_size=settings.subscription_queue_size,
        ),
        database,
    )
    metrics.subscriptions.set_function(lambda: subscriptions.subscriber_count)
    database.outage_listeners.append(metrics.database_error)
    callback_key = settings.callback_key.get_secret_value() if settings.callback_key else None
    return CatalogServices(
        settings=settings,
        database=database,
        metrics=metrics,
        ingestor=Ingestor(
            database,
            callback_key,
            settings.grouping_rules(),
            metrics,
            CommitPacing(settings.commit_interval_seconds),
            PerClientLimit(settings.quarantined_callbacks_per_minute),
        ),
        refusals=PerClientLimit(settings.refused_callbacks_per_minute),
        subscriptions=subscriptions,
        limits=QueryLimits(
            max_depth=settings.graphql_max_depth,
            max_aliases=settings.graphql_max_aliases,
            max_tokens=settings.graphql_max_tokens,
            max_fields=settings.graphql_max_fields,
            introspection=settings.graphql_introspection,
        ),
        documents=ParsedDocuments(),
        replays=ReplayPlaylists(
            database,
            VodFetcher(
                settings.vod_allowed_hosts,
                allow_private_addresses=settings.vod_allow_private_addresses,
                timeout_seconds=settings.vod_fetch_timeout_seconds,
                max_bytes=settings.vod_max_playlist_bytes,
            ),
        ),
    )


def services_of(app: Starlette) -> CatalogServices:
    """The services `create_app` stored on the app (endpoints pass `request.app`)."""
    services: CatalogServices = app.state.services
    return services
